"""Reading a capture file one CBOR item at a time, with damage reported precisely.

Captures of a long scan can be far larger than memory, so :func:`decode_items` decodes one item
at a time from the open file and never holds more than the current item. A decoder failure is
classified (unreadable or truncated file, bytes that are not CBOR, a file of another format) into
a :class:`CaptureError` naming the item and the byte where it starts, after every intact item
before it has been delivered.
"""

from __future__ import annotations

import gzip
import io
import zlib
from typing import Any, BinaryIO, Callable, Iterator, Optional, TypeVar

import cbor2

from dranspose.io.capture_format import (
    BUFFER_SIZE,
    DATETIME_STRING_TAG,
    CaptureError,
    PathLike,
    is_gzip_name,
)

__all__ = ["decode_items", "dump_decoder", "open_for_reading", "read_failure"]

_T = TypeVar("_T")


class _StreamReadError(OSError):
    """The bytes under the decoder could not be produced (decompression or I/O failed).

    Kept apart from decoding errors because gzip signals truncation with ``EOFError``, which would
    otherwise be indistinguishable from a decoder running out of input.
    """


class _ForwardOnlyGzip(io.RawIOBase):
    """A gzip member stream that refuses to seek and counts the bytes it produced.

    ``GzipFile`` claims to be seekable, but a backward seek restarts decompression from the
    beginning of the file. cbor2 6 reads ahead and seeks back on seekable inputs, which would make
    replaying a large ``.gz`` capture quadratic; presenting the stream as forward-only avoids that.
    """

    def __init__(self, gz: gzip.GzipFile) -> None:
        super().__init__()
        self._gz = gz
        self._produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # One short read at a time: a read that tries to fill the whole buffer would raise on a
        # truncated stream and lose the intact data before the cut, misplacing the damage.
        try:
            count = self._gz.readinto1(buffer)
        except EOFError as exc:
            raise _StreamReadError(
                "cannot be read: the gzip stream is truncated (it ends before its end marker)"
            ) from exc
        except (OSError, zlib.error) as exc:
            raise _StreamReadError(f"cannot be read: not a valid gzip stream ({exc})") from exc
        self._produced += count
        return count

    def tell(self) -> int:
        return self._produced

    def close(self) -> None:
        if not self.closed:
            try:
                self._gz.close()
            finally:
                super().close()


def open_for_reading(path: PathLike) -> io.BufferedReader:
    """A buffered reader with ``peek`` and a ``tell`` in uncompressed bytes."""
    if is_gzip_name(path):
        return io.BufferedReader(_ForwardOnlyGzip(gzip.GzipFile(path, "rb")), BUFFER_SIZE)
    return io.BufferedReader(io.FileIO(path, "r"), BUFFER_SIZE)


def _head_hint(head: bytes, compressed: bool) -> str:
    """Explain a failure at the very first byte when the file is plainly another format."""
    if not compressed and head[:2] == b"\x1f\x8b":
        return "; the file looks gzip-compressed, give it a .gz name"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "; the file looks like a pickle stream, give it a .pkls name"
    return ""


def _keep_datetime_string(value: Any, immutable: bool = False) -> cbor2.CBORTag:
    return cbor2.CBORTag(DATETIME_STRING_TAG, value)


def dump_decoder(fp: BinaryIO) -> cbor2.CBORDecoder:
    """A decoder that hands tag 0 (date/time string) over undecoded.

    cbor2 refuses a tag 0 string without a UTC offset while decoding, which would make the whole
    item unreadable; :func:`_created_at` reads such a time itself. cbor2 5 cannot be told so, and
    there a zone-less tag 0 string stays a decoding error of its item.
    """
    try:
        return cbor2.CBORDecoder(fp, semantic_decoders={DATETIME_STRING_TAG: _keep_datetime_string})
    except TypeError:
        return cbor2.CBORDecoder(fp)


def decode_items(
    path: PathLike,
    convert: Callable[[Any, PathLike, int, int], _T],
    make_decoder: Callable[[BinaryIO], cbor2.CBORDecoder] = cbor2.CBORDecoder,
) -> Iterator[_T]:
    """Decode CBOR items one at a time; ``convert`` checks and shapes each one."""
    compressed = is_gzip_name(path)
    with open_for_reading(path) as fp:
        peek = fp.peek
        tell = fp.tell
        decode = make_decoder(fp).decode
        index = 0
        offset = 0
        try:
            head = peek(2)[:2]
        except OSError as exc:
            raise read_failure(path, index, offset, exc) from exc
        while True:
            try:
                offset = tell()
                # EOF before the first byte of an item is the normal end of a capture; only
                # an item that has started and cannot finish is damage.
                if not peek(1):
                    return
                item = decode()
            except (
                cbor2.CBORDecodeError,
                OSError,
                ValueError,
                TypeError,
                OverflowError,
                RecursionError,
                MemoryError,
                EOFError,
            ) as exc:
                hint = _head_hint(head, compressed) if index == 0 else ""
                raise _decode_failure(path, index, offset, exc, hint) from exc
            try:
                result = convert(item, path, index, offset)
            except CaptureError as exc:
                if index == 0:
                    hint = _head_hint(head, compressed)
                    if hint:
                        raise CaptureError(path, index, offset, exc.problem + hint) from exc
                raise
            yield result
            index += 1


def _decode_failure(
    path: PathLike, index: int, offset: int, exc: BaseException, hint: str
) -> CaptureError:
    """Classify a decoder failure: unreadable file, truncated item, or bytes that are not CBOR."""
    # cbor2 6 wraps exceptions raised by the file in its own decode errors; the file's error
    # (for instance a truncated gzip stream) is the one that explains the failure.
    cause: Optional[BaseException] = exc
    seen = set()
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError):
            return read_failure(path, index, offset, cause)
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, cbor2.CBORDecodeEOF):
        return CaptureError(path, index, offset, "is truncated (file ends inside the item)")
    return CaptureError(path, index, offset, f"is not valid CBOR ({exc}){hint}")


def read_failure(path: PathLike, index: int, offset: int, exc: OSError) -> CaptureError:
    """The :class:`CaptureError` for an item whose bytes could not be read or decompressed."""
    if isinstance(exc, _StreamReadError):
        return CaptureError(path, index, offset, str(exc))
    return CaptureError(path, index, offset, f"cannot be read ({exc})")

"""Capture files: recorded streams that can be replayed offline, item by item.

Two layouts share the same container (a plain concatenation of CBOR items, optionally gzipped):

* an *ingester dump* holds one partial event per item, CBOR tag 42877 wrapping
  ``[event_number, {stream: tag 42878 wrapping [typ, [frame, ...]]}, created_at?]``;
  this is what :func:`read_capture` turns back into :class:`InternalWorkerMessage` objects.
  ``created_at`` is read in every form a release wrote (UNIX time, or a datetime: CBOR tag 0 or
  1) as UNIX time; untagged items and streams, and fields after the known ones, are accepted too
  (docs/capture-files.md lists the layouts);
* a *raw capture* holds, per item, the frames of one upstream ZMQ multipart message, before any
  protocol parsing; :func:`read_raw_capture` gives them back so parsers can be tested offline.

Captures of a long scan can be far larger than memory, so every reader decodes one item at a
time from the open file and never holds more than the current item. Damage is the normal case for
captures cut short by a crash or a full disk: everything before the damage is still delivered, and
the damage itself is reported as a :class:`CaptureError` saying which item and which byte, never
as a bare decoder traceback.
"""

from __future__ import annotations

import gzip
import io
import math
import numbers
import os
import pickle
import re
import zlib
from collections.abc import Mapping
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Optional, Sequence, TypeVar, Union

import cbor2
import zmq

from dranspose.core.event import InternalWorkerMessage, StreamData

MESSAGE_TAG = 42877
"""CBOR tag of one ingester-dump item (a partial event)."""

STREAM_TAG = 42878
"""CBOR tag of one stream's data inside a partial event."""

DATETIME_STRING_TAG = 0
"""RFC 8949 tag of a date/time string; the original's later releases store ``created_at`` so."""

PathLike = Union[str, "os.PathLike[str]"]
FrameLike = Union[bytes, bytearray, memoryview, zmq.Frame]

_BUFFER_SIZE = 1 << 16
# The concrete map types cbor2 decodes to (frozendict from cbor2 6 on), checked before the much
# slower ``Mapping`` ABC test.
_MAP_TYPES = (dict, getattr(cbor2, "frozendict", dict))
_T = TypeVar("_T")
_W = TypeVar("_W", bound="_ItemWriter")


class CaptureError(ValueError):
    """A capture file cannot be read past a certain item.

    ``index`` counts items from 0 and ``offset`` is the byte where the bad item starts in the
    uncompressed stream, so the damage can be inspected (or the file cut before it) directly.
    """

    def __init__(self, path: PathLike, index: int, offset: int, problem: str) -> None:
        self.path = os.fspath(path)
        self.index = index
        self.offset = offset
        self.problem = problem
        super().__init__(f"{self.path}: item {index} at byte {offset} {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduction would call __init__ with only the message; replay workers may
        # send this error between processes, so it must survive pickling.
        return (type(self), (self.path, self.index, self.offset, self.problem))


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


def _is_gzip_name(path: PathLike) -> bool:
    return os.fspath(path).lower().endswith(".gz")


def _format_suffix(path: PathLike) -> str:
    """The suffix that says how items are encoded, looking through a ``.gz`` layer."""
    name = os.path.basename(os.fspath(path)).lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    return os.path.splitext(name)[1]


def _open_for_reading(path: PathLike) -> io.BufferedReader:
    """A buffered reader with ``peek`` and a ``tell`` in uncompressed bytes."""
    if _is_gzip_name(path):
        return io.BufferedReader(_ForwardOnlyGzip(gzip.GzipFile(path, "rb")), _BUFFER_SIZE)
    return io.BufferedReader(io.FileIO(path, "r"), _BUFFER_SIZE)


def _head_hint(head: bytes, compressed: bool) -> str:
    """Explain a failure at the very first byte when the file is plainly another format."""
    if not compressed and head[:2] == b"\x1f\x8b":
        return "; the file looks gzip-compressed, give it a .gz name"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "; the file looks like a pickle stream, give it a .pkls name"
    return ""


def _describe(value: Any) -> str:
    """Name a decoded value's kind the same way under every cbor2 version."""
    if isinstance(value, cbor2.CBORTag):
        return f"CBOR tag {value.tag}"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "dict"
    if value is None:
        return "null"
    if value is cbor2.undefined:
        return "undefined"
    if value is getattr(cbor2, "break_marker", cbor2.undefined):
        return "a stray break code"
    return type(value).__name__


def _keep_datetime_string(value: Any, immutable: bool = False) -> cbor2.CBORTag:
    return cbor2.CBORTag(DATETIME_STRING_TAG, value)


def _dump_decoder(fp: BinaryIO) -> cbor2.CBORDecoder:
    """A decoder that hands tag 0 (date/time string) over undecoded.

    cbor2 refuses a tag 0 string without a UTC offset while decoding, which would make the whole
    item unreadable; :func:`_created_at` reads such a time itself. cbor2 5 cannot be told so, and
    there a zone-less tag 0 string stays a decoding error of its item.
    """
    try:
        return cbor2.CBORDecoder(fp, semantic_decoders={DATETIME_STRING_TAG: _keep_datetime_string})
    except TypeError:
        return cbor2.CBORDecoder(fp)


def _decode_items(
    path: PathLike,
    convert: Callable[[Any, PathLike, int, int], _T],
    make_decoder: Callable[[BinaryIO], cbor2.CBORDecoder] = cbor2.CBORDecoder,
) -> Iterator[_T]:
    """Decode CBOR items one at a time; ``convert`` checks and shapes each one."""
    compressed = _is_gzip_name(path)
    with _open_for_reading(path) as fp:
        peek = fp.peek
        tell = fp.tell
        decode = make_decoder(fp).decode  # type: ignore[arg-type]
        index = 0
        offset = 0
        try:
            head = peek(2)[:2]
        except OSError as exc:
            raise _read_failure(path, index, offset, exc) from exc
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
            return _read_failure(path, index, offset, cause)
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, cbor2.CBORDecodeEOF):
        return CaptureError(path, index, offset, "is truncated (file ends inside the item)")
    return CaptureError(path, index, offset, f"is not valid CBOR ({exc}){hint}")


def _read_failure(path: PathLike, index: int, offset: int, exc: OSError) -> CaptureError:
    if isinstance(exc, _StreamReadError):
        return CaptureError(path, index, offset, str(exc))
    return CaptureError(path, index, offset, f"cannot be read ({exc})")


def _not_a_dump(path: PathLike, index: int, offset: int, detail: str) -> CaptureError:
    return CaptureError(path, index, offset, f"is not an ingester dump item ({detail})")


class _Bad(Exception):
    """One detail of a dump item that cannot be read; becomes a :class:`CaptureError`."""


def _is_map(value: Any) -> bool:
    return type(value) in _MAP_TYPES or isinstance(value, Mapping)


_ISO_FRACTION = re.compile(r"(\.\d{6})\d+")


def _parse_iso(text: str) -> datetime:
    """An ISO 8601 / RFC 3339 time, ``Z`` and sub-microsecond digits included, on Python 3.10."""
    norm = text.strip()
    if norm[-1:] in ("Z", "z"):
        norm = norm[:-1] + "+00:00"
    norm = _ISO_FRACTION.sub(r"\1", norm, count=1)
    return datetime.fromisoformat(norm)


def _epoch(value: datetime) -> float:
    """UNIX time of ``value``; a naive datetime is taken to be UTC, as dranspose writes them."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def _created_at(value: Any) -> Optional[float]:
    """``created_at`` as every release wrote it, as UNIX time: absent/null, a float or integer
    (this reimplementation), a datetime (the original's later releases: CBOR tag 0 or tag 1),
    an ISO 8601 string (tag 0 without a zone, or untagged)."""
    if value is None or value is cbor2.undefined:
        return None
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise _Bad(f"created_at must be a finite time, got {value!r}")
        return value
    if kind is int:
        return float(value)
    if isinstance(value, datetime):
        return _epoch(value)
    text = value
    if isinstance(value, cbor2.CBORTag):
        if value.tag != DATETIME_STRING_TAG or type(value.value) is not str:
            raise _Bad(
                "created_at must be a datetime (CBOR tag 0 or 1), a UNIX time or null, "
                f"got {_describe(value)}"
                + (f" wrapping {_describe(value.value)}" if value.tag == 0 else "")
            )
        text = value.value
    if type(text) is str:
        try:
            return _epoch(_parse_iso(text))
        except (ValueError, IndexError):
            raise _Bad(f"created_at {text[:60]!r} is not an ISO 8601 date and time") from None
    raise _Bad(
        f"created_at must be a datetime (CBOR tag 0 or 1), a UNIX time or null, "
        f"got {_describe(value)}"
    )


def _fields_of(body: Any, names: tuple[str, ...], required: int, what: str) -> list[Any]:
    """The positional fields of a list, or the named ones of a map (later ones optional).

    Fields after the known ones, and unknown keys of a map, are ignored: they would come from a
    newer writer and carry nothing this reader uses.
    """
    shape = ", ".join(name + ("?" if i >= required else "") for i, name in enumerate(names))
    if isinstance(body, (list, tuple)):
        if len(body) < required:
            raise _Bad(f"{what} must wrap [{shape}], got a list of {len(body)}")
        return [body[i] if i < len(body) else None for i in range(len(names))]
    if _is_map(body):
        missing = [name for name in names[:required] if name not in body]
        if missing:
            raise _Bad(f"{what} has no {' or '.join(repr(m) for m in missing)}")
        return [body.get(name) for name in names]
    raise _Bad(f"{what} must wrap [{shape}], got {_describe(body)}")


def _looks_like_message(item: Any) -> bool:
    """An untagged item shaped like a partial event: ``[int, map, ...]`` or a map of its fields."""
    if isinstance(item, (list, tuple)):
        return len(item) >= 2 and type(item[0]) is int and _is_map(item[1])
    return _is_map(item) and "event_number" in item and "streams" in item


def _stream(name: str, tagged: Any) -> StreamData:
    if isinstance(tagged, cbor2.CBORTag):
        if tagged.tag != STREAM_TAG:
            raise _Bad(f"stream {name!r}: expected CBOR tag {STREAM_TAG}, got {_describe(tagged)}")
        body, what = tagged.value, f"stream {name!r}: tag {STREAM_TAG}"
    elif (isinstance(tagged, (list, tuple)) and len(tagged) >= 2 and type(tagged[0]) is str) or (
        _is_map(tagged) and "typ" in tagged
    ):
        body, what = tagged, f"stream {name!r}"
    else:
        raise _Bad(
            f"stream {name!r}: expected CBOR tag {STREAM_TAG} wrapping [typ, frames], "
            f"got {_describe(tagged)}"
        )
    typ, frames = _fields_of(body, ("typ", "frames"), 2, what)
    if type(typ) is not str:
        raise _Bad(f"stream {name!r}: typ must be a string, got {_describe(typ)}")
    if not isinstance(frames, (list, tuple)):
        raise _Bad(f"stream {name!r}: frames must be a list, got {_describe(frames)}")
    checked = []
    for number, frame in enumerate(frames):
        if type(frame) is not bytes:
            if not isinstance(frame, (bytearray, memoryview)):
                raise _Bad(
                    f"stream {name!r}: frames must be byte strings, got {_describe(frame)} "
                    f"as frame {number}"
                )
            frame = bytes(frame)
        checked.append(frame)
    return StreamData.model_construct(typ=typ, frames=checked)


def _message(event_number: Any, raw_streams: Any, created_at: Any) -> InternalWorkerMessage:
    """Check the three parts of a partial event and build it without pydantic validation.

    Validation per item would dominate replay time; these checks cover exactly the shapes a
    payload relies on, and the containers are rebuilt as ``list``/``dict`` because cbor2 6 hands
    out tuples and frozendicts where cbor2 5 gave lists and dicts.
    """
    if type(event_number) is not int:
        raise _Bad(f"event_number must be an int, got {_describe(event_number)}")
    if raw_streams is None:
        raw_streams = {}
    if not _is_map(raw_streams):
        raise _Bad(f"streams must be a map, got {_describe(raw_streams)}")
    streams: dict[str, StreamData] = {}
    for name, tagged in raw_streams.items():
        if type(name) is not str:
            raise _Bad(f"stream names must be strings, got {_describe(name)}")
        streams[name] = _stream(name, tagged)
    return InternalWorkerMessage.model_construct(
        event_number=event_number, streams=streams, created_at=_created_at(created_at)
    )


def _to_message(item: Any, path: PathLike, index: int, offset: int) -> InternalWorkerMessage:
    """One decoded dump item, in any layout a release wrote, as a partial event."""
    if isinstance(item, cbor2.CBORTag) and item.tag == MESSAGE_TAG:
        body, what = item.value, f"tag {MESSAGE_TAG}"
    elif _looks_like_message(item):
        body, what = item, "item"
    else:
        hint = ""
        if isinstance(item, (list, tuple)) and item and all(type(f) is bytes for f in item):
            hint = "; it looks like a raw capture, read it with read_raw_capture"
        raise _not_a_dump(
            path, index, offset, f"expected CBOR tag {MESSAGE_TAG}, got {_describe(item)}{hint}"
        )
    try:
        fields = _fields_of(body, ("event_number", "streams", "created_at"), 2, what)
        return _message(*fields)
    except _Bad as exc:
        raise _not_a_dump(path, index, offset, str(exc)) from None


def _to_frames(item: Any, path: PathLike, index: int, offset: int) -> list[bytes]:
    if not isinstance(item, (list, tuple)) or not item:
        raise CaptureError(
            path,
            index,
            offset,
            "is not a raw capture item (expected a non-empty list of byte strings, "
            f"got {'an empty list' if isinstance(item, (list, tuple)) else _describe(item)})",
        )
    for number, frame in enumerate(item):
        if type(frame) is not bytes:
            raise CaptureError(
                path,
                index,
                offset,
                f"is not a raw capture item (frame {number} is {_describe(frame)}, "
                "expected a byte string)",
            )
    return list(item)


def _unpickle_messages(path: PathLike) -> Iterator[InternalWorkerMessage]:
    with _open_for_reading(path) as fp:
        index = 0
        while True:
            try:
                offset = fp.tell()
                if not fp.peek(1):
                    return
                message = pickle.load(fp)
            except OSError as exc:
                raise _read_failure(path, index, offset, exc) from exc
            except EOFError as exc:
                raise CaptureError(
                    path, index, offset, "is truncated (file ends inside the pickle)"
                ) from exc
            except pickle.UnpicklingError as exc:
                problem = (
                    "is truncated (file ends inside the pickle)"
                    if "truncated" in str(exc)
                    else f"is not a valid pickle ({exc})"
                )
                raise CaptureError(path, index, offset, problem) from exc
            except Exception as exc:  # unpickling runs arbitrary constructors: anything can fail
                raise CaptureError(
                    path, index, offset, f"cannot be unpickled ({type(exc).__name__}: {exc})"
                ) from exc
            if not isinstance(message, InternalWorkerMessage):
                raise CaptureError(
                    path,
                    index,
                    offset,
                    f"is not an InternalWorkerMessage (got {type(message).__name__})",
                )
            try:
                message = _from_pickled(message)
            except _Bad as exc:
                raise CaptureError(
                    path, index, offset, f"is not a valid InternalWorkerMessage ({exc})"
                ) from None
            yield message
            index += 1


def _from_pickled(message: InternalWorkerMessage) -> InternalWorkerMessage:
    """A pickled message as this release's model, whichever release pickled it.

    Unpickling restores the attributes the writer had, without validation: the original's
    releases pickled no ``created_at`` (or a datetime), and a stream's frames may not be bytes.
    """
    state = message.__dict__
    streams = {}
    raw_streams = state.get("streams") or {}
    if not _is_map(raw_streams):
        raise _Bad(f"streams must be a map, got {_describe(raw_streams)}")
    for name, data in raw_streams.items():
        if isinstance(data, StreamData):
            data = [data.__dict__.get("typ"), data.__dict__.get("frames")]
        streams[name] = data
    return _message(state.get("event_number"), streams, state.get("created_at"))


def read_capture(path: PathLike) -> Iterator[InternalWorkerMessage]:
    """Replay an ingester capture lazily, one partial event at a time, in file order.

    The name decides the format: ``.pkls`` is a sequence of pickled messages, anything else is an
    ingester dump (``.cbors``/``.cbor`` by convention); a trailing ``.gz`` adds decompression.

    ``.pkls`` files are unpickled, which executes code chosen by whoever wrote the file. That is
    acceptable only for files the user names on their own machine; never route data received
    over the network, or from untrusted sources, through this function.

    The file is opened on the first ``next()``, so a missing file surfaces there as ``OSError``.
    Damage raises :class:`CaptureError` after every intact item before it has been yielded.
    """
    if _format_suffix(path) == ".pkls":
        return _unpickle_messages(path)
    return _decode_items(path, _to_message, _dump_decoder)


def read_raw_capture(path: PathLike) -> Iterator[list[bytes]]:
    """Replay a raw capture lazily: the frames of each recorded ZMQ multipart message, in order.

    Raw captures keep what a detector actually sent, so a protocol parser can be developed and
    tested against it without the detector. Compression and errors work as in
    :func:`read_capture`.
    """
    return _decode_items(path, _to_frames)


def _frame_bytes(frame: Any) -> bytes:
    # memoryview must become bytes before encoding: cbor2 6 would write it as an array of ints.
    if type(frame) is bytes:
        return frame
    if isinstance(frame, zmq.Frame):
        return frame.bytes
    if isinstance(frame, (bytearray, memoryview)):
        return bytes(frame)
    raise TypeError(
        f"frames must be bytes, bytearray, memoryview or zmq.Frame, got {type(frame).__name__}"
    )


def _open_for_writing(path: PathLike, compresslevel: int) -> BinaryIO:
    if _is_gzip_name(path):
        return gzip.GzipFile(path, "wb", compresslevel=compresslevel)  # type: ignore[return-value]
    return open(path, "wb", buffering=_BUFFER_SIZE)


class _ItemWriter:
    """Shared file handling: one complete CBOR item per ``write`` call.

    Writing each item in a single call means a crash leaves at most one truncated item at the end,
    which the readers report after delivering everything before it.
    """

    def __init__(self, path: PathLike, compresslevel: int = 6) -> None:
        self.path = os.fspath(path)
        self._fp: Optional[BinaryIO] = _open_for_writing(path, compresslevel)
        self.items = 0

    def _write_item(self, item: Any) -> None:
        if self._fp is None:
            raise ValueError(f"{self.path}: capture writer is closed")
        self._fp.write(cbor2.dumps(item))
        self.items += 1

    def flush(self) -> None:
        """Push written items to the OS, so a reader (or a crash) sees them."""
        if self._fp is not None:
            self._fp.flush()

    def close(self) -> None:
        """Finish the file; for ``.gz`` this writes the end marker without which readers fail."""
        if self._fp is not None:
            fp, self._fp = self._fp, None
            fp.close()

    def __enter__(self: _W) -> _W:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class CaptureWriter(_ItemWriter):
    """Write partial events as an ingester dump that :func:`read_capture` replays.

    A path ending in ``.gz`` is gzip-compressed. ``.pkls`` names are refused: the reader would
    unpickle a CBOR file and fail, so the mismatch is caught when writing instead.
    """

    def __init__(self, path: PathLike, compresslevel: int = 6) -> None:
        if _format_suffix(path) == ".pkls":
            raise ValueError(f"{os.fspath(path)}: CaptureWriter writes CBOR; use a .cbors name")
        super().__init__(path, compresslevel)

    def write(self, msg: InternalWorkerMessage) -> None:
        """Append one partial event; ``created_at`` is stored only when it is set."""
        number = msg.event_number
        if isinstance(number, bool) or not isinstance(number, numbers.Integral):
            raise TypeError(f"event_number must be an integer, got {type(number).__name__}")
        streams = {}
        for name, data in msg.streams.items():
            if not isinstance(name, str) or not isinstance(data.typ, str):
                raise TypeError(f"event {number}: stream names and typ must be strings")
            frames = [_frame_bytes(frame) for frame in data.frames]
            streams[name] = cbor2.CBORTag(STREAM_TAG, [data.typ, frames])
        fields: list[Any] = [int(number), streams]
        if msg.created_at is not None:
            fields.append(float(msg.created_at))
        self._write_item(cbor2.CBORTag(MESSAGE_TAG, fields))


class RawCaptureWriter(_ItemWriter):
    """Write upstream multipart messages unparsed, for :func:`read_raw_capture`."""

    def write(self, frames: Sequence[FrameLike]) -> None:
        """Append the frames of one multipart message."""
        item = [_frame_bytes(frame) for frame in frames]
        if not item:
            raise ValueError("a multipart message has at least one frame")
        self._write_item(item)


def write_capture(path: PathLike, messages: Iterable[InternalWorkerMessage]) -> int:
    """Write ``messages`` as an ingester dump and return how many were written."""
    with CaptureWriter(path) as writer:
        for msg in messages:
            writer.write(msg)
        return writer.items

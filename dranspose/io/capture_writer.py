"""Writing captures: ingester dumps (:class:`CaptureWriter`) and raw upstream messages
(:class:`RawCaptureWriter`), one complete CBOR item per write, optionally gzipped."""

from __future__ import annotations

import gzip
import numbers
import os
from types import TracebackType
from typing import Any, BinaryIO, Iterable, Optional, Sequence, TypeVar

import cbor2

from dranspose.core.event import InternalWorkerMessage
from dranspose.io.capture_format import (
    BUFFER_SIZE,
    MESSAGE_TAG,
    STREAM_TAG,
    FrameLike,
    PathLike,
    format_suffix,
    is_gzip_name,
)
from dranspose.protocols.common.frames import frame_bytes

__all__ = ["CaptureWriter", "RawCaptureWriter", "write_capture"]

_W = TypeVar("_W", bound="_ItemWriter")


def _open_for_writing(path: PathLike, compresslevel: int) -> BinaryIO:
    if is_gzip_name(path):
        return gzip.GzipFile(path, "wb", compresslevel=compresslevel)  # type: ignore[return-value]
    return open(path, "wb", buffering=BUFFER_SIZE)


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
        if format_suffix(path) == ".pkls":
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
            frames = [frame_bytes(frame) for frame in data.frames]
            streams[name] = cbor2.CBORTag(STREAM_TAG, [data.typ, frames])
        fields: list[Any] = [int(number), streams]
        if msg.created_at is not None:
            fields.append(float(msg.created_at))
        self._write_item(cbor2.CBORTag(MESSAGE_TAG, fields))


class RawCaptureWriter(_ItemWriter):
    """Write upstream multipart messages unparsed, for :func:`read_raw_capture`."""

    def write(self, frames: Sequence[FrameLike]) -> None:
        """Append the frames of one multipart message."""
        item = [frame_bytes(frame) for frame in frames]
        if not item:
            raise ValueError("a multipart message has at least one frame")
        self._write_item(item)


def write_capture(path: PathLike, messages: Iterable[InternalWorkerMessage]) -> int:
    """Write ``messages`` as an ingester dump and return how many were written."""
    with CaptureWriter(path) as writer:
        for msg in messages:
            writer.write(msg)
        return writer.items

"""Parser for Xspress3 streams, and the grouping of single-frame streams into messages.

:func:`parse` decodes one message: the JSON header, for images also the spectra (a zero-copy
numpy view of the frame) and the meta pickle. The pickle is decoded with the restricted
:func:`dranspose.protocols.common.safe_pickle.safe_loads`, never with ``pickle.loads``, since it comes
from the network.

Older Xspress3 servers send each frame of an image as a separate ZMQ message, so an ingester has
to put the three back together before forwarding them as one event. :class:`FrameGrouper` does
that one received message at a time (for an ingester's receive loop); :func:`group_single_frames`
does it over an iterable (for captures and tests). Both pass multipart messages through
unchanged, so either server generation can be fed to them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from pydantic_core import from_json

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.frames import Buffer, Frame, array_dtype, frame_buffer, size_text
from dranspose.protocols.common.json_header import load_json_object, packet_class, validate
from dranspose.protocols.common.safe_pickle import safe_loads
from dranspose.protocols.common.stream_argument import stream_argument
from dranspose.protocols.xspress3.packets import (
    META_NAMES,
    WINDOW_COUNTS,
    XspressEnd,
    XspressImage,
    XspressStart,
)

__all__ = ["FrameGrouper", "ParseError", "group_single_frames", "parse"]

_Packet = Union[XspressStart, XspressImage, XspressEnd]
_PACKETS: dict[str, type[_Packet]] = {
    "header": XspressStart,
    "image": XspressImage,
    "series_end": XspressEnd,
}
_IMAGE_FRAMES = 3
_NUMERIC_KINDS = "biuf"

# Stands in for the arrays while the image header is validated; replaced before returning.
_NO_DATA = np.empty(0, dtype=np.uint8)
_NO_DATA.flags.writeable = False
_ARRAY_FIELDS = ("data", *META_NAMES)


def parse(
    data: Optional[StreamData] = None, *, stream_data: Optional[StreamData] = None
) -> _Packet:
    """Decode one Xspress3 message: its header, and for images the spectra and meta frames.

    The stream is passed as ``data`` (the original dranspose's name: ``parse(stream)`` or
    ``parse(data=stream)``) or as ``stream_data``.
    Start and end messages are one frame; images are three (header, spectra, meta pickle).
    Raises :class:`ParseError` naming the stream type, the frame and what was expected when the
    frames are not such a message. Any ``typ`` is accepted.
    """
    stream: StreamData = stream_argument(data, stream_data, "xspress3.parse")
    typ = stream.typ
    frames = stream.frames
    if not frames:
        raise ParseError(f"{typ} stream: no frames; expected a JSON header in frame 0")
    at = f"{typ} frame 0 (header)"
    header = load_json_object(frames[0], at, "a JSON object with an 'htype' field", show_value=True)
    cls = packet_class(header, "htype", _PACKETS, at)
    htype = header["htype"]
    invalid = f"{at}: invalid {htype!r} header"
    if cls is not XspressImage:
        if len(frames) != 1:
            raise ParseError(
                f"{typ} {htype!r} message has {len(frames)} frames, expected only the header"
            )
        return validate(cls, header, invalid, whole="header", dotted=True)

    for name in _ARRAY_FIELDS:
        header[name] = _NO_DATA
    packet = validate(XspressImage, header, invalid, whole="header", dotted=True)
    where = f"{typ} image frame={packet.frame}"
    shape = packet.shape
    if len(shape) != 2 or min(shape) < 0:
        raise ParseError(f"{where}: header shape {shape} is not [channels, bins]")
    dtype = array_dtype(where, shape, packet.type, "'uint32'", kinds=_NUMERIC_KINDS)
    if packet.compression not in (None, "none"):
        raise ParseError(
            f"{where}: compression {packet.compression!r} is not supported; expected 'none'"
        )
    if len(frames) != _IMAGE_FRAMES:
        missing = "frame 1 (spectra)" if len(frames) == 1 else "frame 2 (meta pickle)"
        if len(frames) > _IMAGE_FRAMES:
            problem = f"has {len(frames)} frames"
        else:
            problem = f"{missing} is missing"
        raise ParseError(
            f"{where}: {problem}; expected 3 frames: JSON header, spectra, meta pickle"
        )
    buf = frame_buffer(frames[1], where, "frame 1 (spectra)")
    if len(buf) != math.prod(shape) * dtype.itemsize:
        raise ParseError(
            f"{where}: frame 1 (spectra) has {len(buf)} bytes, expected {size_text(shape, dtype)}"
        )
    values = packet.__dict__
    values["data"] = np.frombuffer(buf, dtype=dtype).reshape(shape)
    meta = frame_buffer(frames[2], where, "frame 2 (meta pickle)")
    values.update(_load_meta(where, shape[0], meta))
    return packet


def _load_meta(where: str, channels: int, buf: Buffer) -> dict[str, Any]:
    """The meta pickle's items by field name, each checked against the channel count."""
    meta = safe_loads(buf, f"{where}: frame 2 (meta pickle)")
    if type(meta) not in (list, tuple):
        raise ParseError(
            f"{where}: frame 2 (meta pickle) holds a {type(meta).__name__}, expected a list of "
            f"{len(META_NAMES)} or more per-channel arrays"
        )
    if len(meta) < len(META_NAMES):
        raise ParseError(
            f"{where}: frame 2 (meta pickle) holds {len(meta)} items, expected at least "
            f"{len(META_NAMES)} ({', '.join(META_NAMES)})"
        )
    values: dict[str, Any] = {}
    for index, name in enumerate(META_NAMES):
        item = meta[index]
        if (
            type(item) is not np.ndarray
            or item.shape != (channels,)
            or item.dtype.kind not in _NUMERIC_KINDS
        ):
            raise ParseError(
                f"{where}: frame 2 (meta pickle) item {index} ({name}) is {_describe(item)}, "
                f"expected a numeric array of shape ({channels},), one value per channel"
            )
        values[name] = item
    rest = list(meta[len(META_NAMES) :])
    if rest:
        counts = rest.pop(0)
        if (
            type(counts) is not np.ndarray
            or counts.ndim != 2
            or counts.shape[1] != channels
            or counts.dtype.kind not in _NUMERIC_KINDS
        ):
            raise ParseError(
                f"{where}: frame 2 (meta pickle) item {len(META_NAMES)} ({WINDOW_COUNTS}) is "
                f"{_describe(counts)}, expected a numeric array of shape (windows, {channels})"
            )
        values[WINDOW_COUNTS] = counts
    values["extra_meta"] = rest
    return values


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"a {type(value).__name__}"


# --- grouping single-frame streams -------------------------------------------------------------


SkipCallback = Callable[[Frame, str], None]
"""Called with a frame that cannot start a message and the reason, e.g. to log it."""


class FrameGrouper:
    """Reassemble Xspress3 messages from the frames of a single-frame stream.

    Feed every received ZMQ message (its list of frames) to :meth:`feed`; it returns the
    messages completed by it, each a list of frames: a start or end header alone, an image as
    header, spectra and meta. A multipart message (more than one frame) is already complete and
    is passed through, so streams from newer servers work too.

    A frame that is not a JSON header where a message must start (the subscriber joined in the
    middle of an image, say) is dropped and reported to ``on_skip``. If a header arrives where
    an image still waits for its spectra or meta, the incomplete image is returned as it is, so
    :func:`parse` reports what is missing for that image instead of it vanishing.
    """

    def __init__(self, on_skip: Optional[SkipCallback] = None) -> None:
        self._on_skip = on_skip
        self._pending: Optional[list[Frame]] = None

    @property
    def pending(self) -> int:
        """How many frames of an incomplete image are held back."""
        return len(self._pending) if self._pending is not None else 0

    def feed(self, message: Union[Frame, Sequence[Frame]]) -> list[list[Frame]]:
        """Take one received message (a list of frames, or a single frame)."""
        if isinstance(message, (list, tuple)):
            if len(message) != 1:
                done = self.flush()
                if message:
                    done.append(list(message))
                return done
            frame = message[0]
        else:
            frame = message
        pending = self._pending
        if pending is not None:
            if _peek_htype(frame) is None:
                pending.append(frame)
                if len(pending) < _IMAGE_FRAMES:
                    return []
                self._pending = None
                return [pending]
            done = self.flush()
            done.extend(self._start(frame))
            return done
        return self._start(frame)

    def flush(self) -> list[list[Frame]]:
        """Hand out an incomplete image, if one is held back (at the end of a stream)."""
        pending, self._pending = self._pending, None
        return [pending] if pending is not None else []

    def _start(self, frame: Frame) -> list[list[Frame]]:
        htype = _peek_htype(frame)
        if htype is None:
            if self._on_skip is not None:
                self._on_skip(frame, "not a JSON header with an 'htype', where a message starts")
            return []
        if htype == "image":
            self._pending = [frame]
            return []
        return [[frame]]


def group_single_frames(
    frames: Iterable[Union[Frame, Sequence[Frame]]],
    on_skip: Optional[SkipCallback] = None,
) -> Iterator[list[Frame]]:
    """Yield the frames of each Xspress3 message from a stream of single frames.

    Each item of ``frames`` is a frame or a received message (a list of frames); see
    :class:`FrameGrouper` for how headers, images and stray frames are handled. An image left
    incomplete at the end is yielded as it is.
    """
    grouper = FrameGrouper(on_skip)
    for item in frames:
        yield from grouper.feed(item)
    yield from grouper.flush()


def _peek_htype(frame: Frame) -> Optional[str]:
    """The ``htype`` of a JSON header frame, or None for any other frame (spectra, meta)."""
    try:
        view = frame_buffer(frame, "xspress frame")
    except ParseError:
        return None
    if not view or view[0] != ord("{"):
        return None
    try:
        header = from_json(view if type(view) is bytes else bytes(view))
    except ValueError:
        return None
    if type(header) is not dict:
        return None
    htype = header.get("htype")
    return htype if type(htype) is str else None

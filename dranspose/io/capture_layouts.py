"""The item layouts of ingester dumps and raw captures, in every form a release wrote them.

An ingester-dump item becomes an :class:`InternalWorkerMessage` (:func:`to_message`), a raw
capture item a list of frames (:func:`to_frames`), and a message unpickled from a ``.pkls`` file
this release's model (:func:`from_pickled`). ``created_at`` is read in every form a release wrote
(UNIX time, a datetime as CBOR tag 0 or 1, an ISO 8601 string); untagged items and streams, and
fields after the known ones, are accepted too (docs/capture-files.md lists the layouts).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any, Optional

import cbor2

from dranspose.core.construct import trusted
from dranspose.core.event import Frame, InternalWorkerMessage, StreamData
from dranspose.core.protocol import EventNumber, StreamName
from dranspose.io.capture_format import (
    DATETIME_STRING_TAG,
    MESSAGE_TAG,
    STREAM_TAG,
    CaptureError,
    PathLike,
    describe,
    is_map,
)

__all__ = [
    "LayoutError",
    "from_message_tag",
    "from_pickled",
    "from_stream_tag",
    "to_frames",
    "to_message",
]


def _not_a_dump(path: PathLike, index: int, offset: int, detail: str) -> CaptureError:
    return CaptureError(path, index, offset, f"is not an ingester dump item ({detail})")


class LayoutError(Exception):
    """One detail of a dump item that cannot be read; becomes a :class:`CaptureError`."""


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
            raise LayoutError(f"created_at must be a finite time, got {value!r}")
        return value
    if kind is int:
        return float(value)
    if isinstance(value, datetime):
        return _epoch(value)
    text = value
    if isinstance(value, cbor2.CBORTag):
        if value.tag != DATETIME_STRING_TAG or type(value.value) is not str:
            raise LayoutError(
                "created_at must be a datetime (CBOR tag 0 or 1), a UNIX time or null, "
                f"got {describe(value)}"
                + (f" wrapping {describe(value.value)}" if value.tag == 0 else "")
            )
        text = value.value
    if type(text) is str:
        try:
            return _epoch(_parse_iso(text))
        except (ValueError, IndexError):
            raise LayoutError(
                f"created_at {text[:60]!r} is not an ISO 8601 date and time"
            ) from None
    raise LayoutError(
        f"created_at must be a datetime (CBOR tag 0 or 1), a UNIX time or null, "
        f"got {describe(value)}"
    )


def _fields_of(body: Any, names: tuple[str, ...], required: int, what: str) -> list[Any]:
    """The positional fields of a list, or the named ones of a map (later ones optional).

    Fields after the known ones, and unknown keys of a map, are ignored: they would come from a
    newer writer and carry nothing this reader uses.
    """
    shape = ", ".join(name + ("?" if i >= required else "") for i, name in enumerate(names))
    if isinstance(body, (list, tuple)):
        if len(body) < required:
            raise LayoutError(f"{what} must wrap [{shape}], got a list of {len(body)}")
        return [body[i] if i < len(body) else None for i in range(len(names))]
    if is_map(body):
        missing = [name for name in names[:required] if name not in body]
        if missing:
            raise LayoutError(f"{what} has no {' or '.join(repr(m) for m in missing)}")
        return [body.get(name) for name in names]
    raise LayoutError(f"{what} must wrap [{shape}], got {describe(body)}")


def _looks_like_message(item: Any) -> bool:
    """An untagged item shaped like a partial event: ``[int, map, ...]`` or a map of its fields."""
    if isinstance(item, (list, tuple)):
        return len(item) >= 2 and type(item[0]) is int and is_map(item[1])
    return is_map(item) and "event_number" in item and "streams" in item


def _stream(name: str, tagged: Any) -> StreamData:
    who = f"stream {name!r}" if name else "stream"
    if isinstance(tagged, StreamData):  # decoded already, by a tag hook (message_tag_hook)
        return _stream(name, [tagged.typ, tagged.frames])
    if isinstance(tagged, cbor2.CBORTag):
        if tagged.tag != STREAM_TAG:
            raise LayoutError(f"{who}: expected CBOR tag {STREAM_TAG}, got {describe(tagged)}")
        body, what = tagged.value, f"{who}: tag {STREAM_TAG}"
    elif (isinstance(tagged, (list, tuple)) and len(tagged) >= 2 and type(tagged[0]) is str) or (
        is_map(tagged) and "typ" in tagged
    ):
        body, what = tagged, f"{who}"
    else:
        raise LayoutError(
            f"{who}: expected CBOR tag {STREAM_TAG} wrapping [typ, frames], got {describe(tagged)}"
        )
    typ, frames = _fields_of(body, ("typ", "frames"), 2, what)
    if type(typ) is not str:
        raise LayoutError(f"{who}: typ must be a string, got {describe(typ)}")
    if not isinstance(frames, (list, tuple)):
        raise LayoutError(f"{who}: frames must be a list, got {describe(frames)}")
    checked: list[Frame] = []
    for number, frame in enumerate(frames):
        if type(frame) is not bytes:
            if not isinstance(frame, (bytearray, memoryview)):
                raise LayoutError(
                    f"{who}: frames must be byte strings, got {describe(frame)} as frame {number}"
                )
            frame = bytes(frame)
        checked.append(frame)
    return trusted(StreamData, {"typ": typ, "frames": checked})


def _message(event_number: Any, raw_streams: Any, created_at: Any) -> InternalWorkerMessage:
    """Check the three parts of a partial event and build it without pydantic validation.

    Validation per item would dominate replay time; these checks cover exactly the shapes a
    payload relies on, and the containers are rebuilt as ``list``/``dict`` because cbor2 6 hands
    out tuples and frozendicts where cbor2 5 gave lists and dicts.
    """
    if type(event_number) is not int:
        raise LayoutError(f"event_number must be an int, got {describe(event_number)}")
    if raw_streams is None:
        raw_streams = {}
    if not is_map(raw_streams):
        raise LayoutError(f"streams must be a map, got {describe(raw_streams)}")
    streams: dict[StreamName, StreamData] = {}
    for name, tagged in raw_streams.items():
        if type(name) is not str:
            raise LayoutError(f"stream names must be strings, got {describe(name)}")
        streams[StreamName(name)] = _stream(name, tagged)
    return trusted(
        InternalWorkerMessage,
        {
            "event_number": EventNumber(event_number),
            "streams": streams,
            "created_at": _created_at(created_at),
        },
    )


def to_message(item: Any, path: PathLike, index: int, offset: int) -> InternalWorkerMessage:
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
            path, index, offset, f"expected CBOR tag {MESSAGE_TAG}, got {describe(item)}{hint}"
        )
    try:
        fields = _fields_of(body, ("event_number", "streams", "created_at"), 2, what)
        return _message(*fields)
    except LayoutError as exc:
        raise _not_a_dump(path, index, offset, str(exc)) from None


def from_stream_tag(body: Any) -> StreamData:
    """The value of a CBOR tag 42878 (one stream of a partial event) as :class:`StreamData`."""
    return _stream("", cbor2.CBORTag(STREAM_TAG, body))


def from_message_tag(body: Any) -> InternalWorkerMessage:
    """The value of a CBOR tag 42877 as a partial event; its streams may be decoded already."""
    return _message(*_fields_of(body, ("event_number", "streams", "created_at"), 2, "tag 42877"))


def to_frames(item: Any, path: PathLike, index: int, offset: int) -> list[bytes]:
    """One decoded raw-capture item as the frames of its multipart message, checked."""
    if not isinstance(item, (list, tuple)) or not item:
        raise CaptureError(
            path,
            index,
            offset,
            "is not a raw capture item (expected a non-empty list of byte strings, "
            f"got {'an empty list' if isinstance(item, (list, tuple)) else describe(item)})",
        )
    for number, frame in enumerate(item):
        if type(frame) is not bytes:
            raise CaptureError(
                path,
                index,
                offset,
                f"is not a raw capture item (frame {number} is {describe(frame)}, "
                "expected a byte string)",
            )
    return list(item)


def from_pickled(message: InternalWorkerMessage) -> InternalWorkerMessage:
    """A pickled message as this release's model, whichever release pickled it.

    Unpickling restores the attributes the writer had, without validation: the original's
    releases pickled no ``created_at`` (or a datetime), and a stream's frames may not be bytes.
    """
    state = message.__dict__
    streams = {}
    raw_streams = state.get("streams") or {}
    if not is_map(raw_streams):
        raise LayoutError(f"streams must be a map, got {describe(raw_streams)}")
    for name, data in raw_streams.items():
        if isinstance(data, StreamData):
            data = [data.__dict__.get("typ"), data.__dict__.get("frames")]
        streams[name] = data
    return _message(state.get("event_number"), streams, state.get("created_at"))

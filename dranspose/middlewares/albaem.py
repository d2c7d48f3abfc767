"""Parser for AlbaEM electrometer streams: :func:`parse` turns a ``StreamData`` into a packet.

An AlbaEM message is one frame of JSON. It is decoded with pydantic-core's JSON parser and
validated by the packet model in one pass, which also checks that every ``channelN`` reading is a
number (see :mod:`dranspose.data.albaem`). A message of more than one frame is refused rather
than half understood.
"""

from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ValidationError

from dranspose.data.albaem import AlbaemData, AlbaemEnd, AlbaemStart
from dranspose.event import StreamData
from dranspose.middlewares._json import load_json_object, summarise
from dranspose.middlewares.errors import ParseError

__all__ = ["ParseError", "parse"]

_PACKETS: dict[str, type[BaseModel]] = {
    "series-start": AlbaemStart,
    "data": AlbaemData,
    "series-end": AlbaemEnd,
}
_KNOWN_TYPES = ", ".join(repr(t) for t in _PACKETS)


def parse(stream_data: StreamData) -> Union[AlbaemStart, AlbaemData, AlbaemEnd]:
    """Decode one AlbaEM message into :class:`AlbaemStart`, :class:`AlbaemData` or
    :class:`AlbaemEnd`.

    Raises :class:`ParseError` naming the stream type, the frame and what was expected when the
    frames are not a valid AlbaEM message. Any ``typ`` is accepted: only the frames matter.
    """
    typ = stream_data.typ
    frames = stream_data.frames
    if len(frames) != 1:
        got = "no frames" if not frames else f"{len(frames)} frames"
        raise ParseError(f"{typ} stream: {got}; expected exactly one frame holding a JSON object")
    message = _load_json(typ, frames[0])
    message_type = message.get("message_type")
    cls = _PACKETS.get(message_type) if type(message_type) is str else None
    if cls is None:
        got = (
            f"message_type {message_type!r}" if "message_type" in message
            else "no 'message_type' field"
        )
        raise ParseError(
            f"{typ} frame 0: {got}; expected message_type to be one of {_KNOWN_TYPES}"
        )
    try:
        return cls.__pydantic_validator__.validate_python(message)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ParseError(
            f"{typ} frame 0: invalid {message_type!r} message: {_summarise(exc)}"
        ) from exc


def _load_json(typ: str, frame: Any) -> dict[str, Any]:
    return load_json_object(frame, f"{typ} frame 0", "a JSON object with a 'message_type' field")


def _summarise(exc: ValidationError) -> str:
    return summarise(exc, whole="message", dotted=True)

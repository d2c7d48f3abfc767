"""Helpers the parsers share for their headers: reading a frame as a JSON object, picking the
packet class a header's kind field names, and validating into it with every field error turned
into one readable sentence for a :class:`ParseError`.

Kept in one place so that every protocol words the same mistake the same way; the keyword
arguments only preserve the wording each parser's messages have always had.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.frames import Frame, frame_bytes

_T = TypeVar("_T")
_Model = TypeVar("_Model", bound=BaseModel)


def json_kind(value: Any) -> str:
    """The JSON name of a decoded value's type, for "got a JSON array" messages."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    return "number"


def short(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: error messages stay one readable line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_HOLDING_JSON = "bytes holding a JSON object"


def load_json_object(
    frame: Frame, where: str, expected: str, *, show_value: bool = False, separator: str = ","
) -> dict[str, Any]:
    """Decode a frame that must hold a JSON object; ``expected`` says which (for messages).

    Anything else is a :class:`ParseError` starting with ``where``: "got a JSON array" or, with
    ``show_value``, "got JSON list [1, 2]", then ``separator`` and "expected ...".
    """
    raw: Any = (
        frame if type(frame) in (bytearray, str) else frame_bytes(frame, where, _HOLDING_JSON)
    )
    try:
        value = from_json(raw)
    except ValueError as exc:
        raise ParseError(f"{where}: not valid JSON ({exc}); expected {expected}") from exc
    if type(value) is not dict:
        if show_value:
            got = f"JSON {type(value).__name__} {short(value)}"
        else:
            got = f"a JSON {json_kind(value)}"
        raise ParseError(f"{where}: got {got}{separator} expected {expected}")
    return value


def summarise(exc: ValidationError, whole: str = "message", dotted: bool = False) -> str:
    """One sentence for all field errors: ``shape is missing; frame: ... got 'x'``.

    Locations read ``a.b[0]``, or ``a.b.0`` when ``dotted``; an error of the whole model is
    located at ``whole``. A validator's own ``ValueError`` is quoted as it is.
    """
    parts = []
    for err in exc.errors(include_url=False):
        if dotted:
            loc = ".".join(str(p) for p in err["loc"])
        else:
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
            loc = loc.lstrip(".")
        if err["type"] == "missing":
            parts.append(f"{loc or whole} is missing")
        elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
            cause = str(err["ctx"]["error"])
            parts.append(f"{loc}: {cause}" if loc else cause)
        else:
            parts.append(f"{loc or whole}: {err['msg']}, got {short(err.get('input'))}")
    return "; ".join(parts)


def validate(
    cls: type[_Model],
    fields: Mapping[str, Any],
    where: str,
    whole: str = "message",
    dotted: bool = False,
) -> _Model:
    """``fields`` validated into ``cls``; a :class:`ParseError` ``"<where>: <summary>"`` (see
    :func:`summarise`) with the validation error chained when they do not fit."""
    try:
        packet: _Model = cls.__pydantic_validator__.validate_python(fields)
    except ValidationError as exc:
        raise ParseError(f"{where}: {summarise(exc, whole, dotted)}") from exc
    return packet


def packet_class(
    message: Mapping[Any, Any], key: str, packets: Mapping[str, _T], where: str, noun: str = "field"
) -> _T:
    """The entry of ``packets`` that the string ``message[key]`` names; otherwise a
    :class:`ParseError` saying what the message holds and which values are known."""
    kind = message.get(key)
    found = packets.get(kind) if type(kind) is str else None
    if found is None:
        got = f"{key} {kind!r:.60}" if key in message else f"no {key!r} {noun}"
        known = ", ".join(repr(name) for name in packets)
        raise ParseError(f"{where}: {got}; expected {key} to be one of {known}")
    return found


def parse_single_json_message(
    stream_data: Any, packets: Mapping[str, type[_Model]], key: str = "message_type"
) -> _Model:
    """Decode a one-frame JSON message into the packet class its ``key`` field names.

    The shared shape of several device protocols (PandA pcap, AlbaEM): the error says which
    stream type and frame, and what was expected.
    """
    typ = stream_data.typ
    frames = stream_data.frames
    if len(frames) != 1:
        got = "no frames" if not frames else f"{len(frames)} frames"
        raise ParseError(f"{typ} stream: {got}; expected exactly one frame holding a JSON object")
    where = f"{typ} frame 0"
    message = load_json_object(frames[0], where, f"a JSON object with a '{key}' field")
    cls = packet_class(message, key, packets, where)
    return validate(cls, message, f"{where}: invalid {message[key]!r} message", dotted=True)

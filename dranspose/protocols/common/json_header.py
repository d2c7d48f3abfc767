"""Helpers every JSON-speaking parser shares: reading a frame as a JSON object, and turning a
pydantic validation error into one readable sentence for a :class:`ParseError`."""

from __future__ import annotations

from typing import Any

import zmq
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from dranspose.protocols.common.errors import ParseError


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


def frame_raw(frame: Any, where: str) -> Any:
    """The bytes of a frame (``bytes``, ``zmq.Frame`` or any buffer) without copying bytes."""
    if isinstance(frame, (bytes, bytearray, str)):
        return frame
    if isinstance(frame, zmq.Frame):
        return frame.bytes
    try:
        return bytes(memoryview(frame))
    except TypeError as exc:
        raise ParseError(
            f"{where}: got a {type(frame).__name__}, expected bytes holding a JSON object"
        ) from exc


def load_json_object(frame: Any, where: str, expected: str) -> dict[str, Any]:
    """Decode a frame that must hold a JSON object; ``expected`` says which (for messages)."""
    raw = frame_raw(frame, where)
    try:
        value = from_json(raw)
    except ValueError as exc:
        raise ParseError(f"{where}: not valid JSON ({exc}); expected {expected}") from exc
    if type(value) is not dict:
        raise ParseError(f"{where}: got a JSON {json_kind(value)}, expected {expected}")
    return value


def summarise(exc: ValidationError, whole: str = "message", dotted: bool = False) -> str:
    """One sentence for all field errors: ``shape is missing; frame: ... got 'x'``."""
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


def parse_single_json_message(
    stream_data: Any, packets: dict[str, type[BaseModel]], key: str = "message_type"
) -> Any:
    """Decode a one-frame JSON message into the packet class its ``key`` field names.

    The shared shape of several device protocols (PandA pcap, AlbaEM): the error says which
    stream type and frame, and what was expected.
    """
    typ = stream_data.typ
    frames = stream_data.frames
    if len(frames) != 1:
        got = "no frames" if not frames else f"{len(frames)} frames"
        raise ParseError(f"{typ} stream: {got}; expected exactly one frame holding a JSON object")
    message = load_json_object(frames[0], f"{typ} frame 0", f"a JSON object with a '{key}' field")
    kind = message.get(key)
    cls = packets.get(kind) if type(kind) is str else None
    if cls is None:
        got = f"{key} {kind!r}" if key in message else f"no '{key}' field"
        known = ", ".join(repr(t) for t in packets)
        raise ParseError(f"{typ} frame 0: {got}; expected {key} to be one of {known}")
    try:
        return cls.__pydantic_validator__.validate_python(message)
    except ValidationError as exc:
        raise ParseError(
            f"{typ} frame 0: invalid {kind!r} message: "
            f"{summarise(exc, whole='message', dotted=True)}"
        ) from exc

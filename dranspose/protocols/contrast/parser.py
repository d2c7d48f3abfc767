"""Parser for Contrast scan-controller streams: :func:`parse` turns a ``StreamData`` into a packet.

Contrast sends pickles, and a plain ``pickle.loads`` of a received frame would run any code the
sender names. The frame is therefore decoded with
:func:`dranspose.protocols.common.safe_pickle.safe_loads`, which builds only plain data,
``OrderedDict`` and numpy values, and the resulting dict is validated by the packet model its
``status`` selects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Union

import zmq
from pydantic import ValidationError

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.json_header import short as _short
from dranspose.protocols.common.safe_pickle import safe_loads
from dranspose.protocols.contrast.packets import (
    ContrastBase,
    ContrastFinished,
    ContrastHeartbeat,
    ContrastRunning,
    ContrastStarted,
)

__all__ = ["ParseError", "parse"]

_PACKETS: dict[str, type[ContrastBase]] = {
    "started": ContrastStarted,
    "running": ContrastRunning,
    "finished": ContrastFinished,
    "heartbeat": ContrastHeartbeat,
}
_KNOWN = ", ".join(repr(status) for status in _PACKETS)


def parse(
    stream_data: StreamData,
) -> Union[ContrastStarted, ContrastRunning, ContrastFinished, ContrastHeartbeat]:
    """Decode one Contrast message into the packet its ``status`` names.

    Raises :class:`ParseError` naming the stream type and what was wrong when the message is not
    exactly one frame holding a pickled dict with a known ``status``, or when the pickle names
    anything besides plain data and numpy values. Any ``typ`` is accepted.
    """
    typ = stream_data.typ
    frames = stream_data.frames
    if len(frames) != 1:
        raise ParseError(
            f"{typ} message has {len(frames)} frames; expected exactly one frame holding a "
            f"pickled dict"
        )
    frame = frames[0]
    buf = frame.buffer if isinstance(frame, zmq.Frame) else frame
    message = safe_loads(buf, f"{typ} frame 0")
    if not isinstance(message, Mapping):
        raise ParseError(
            f"{typ} frame 0: unpickled a {type(message).__name__}, expected a dict with a "
            f"'status' key"
        )
    status = message.get("status")
    cls = _PACKETS.get(status) if type(status) is str else None
    if cls is None:
        got = f"status {status!r:.60}" if "status" in message else "no 'status' key"
        raise ParseError(f"{typ} frame 0: {got}; expected status to be one of {_KNOWN}")
    for key in message:
        if type(key) is not str:
            raise ParseError(
                f"{typ} frame 0: {status!r} message has a key {key!r:.60} that is not a str"
            )
    try:
        return cls.model_validate(message)  # type: ignore[return-value]
    except ValidationError as exc:
        raise ParseError(f"{typ} frame 0: invalid {status!r} message: {_summarise(exc)}") from exc


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "message"
        if err["type"] == "missing":
            parts.append(f"{loc} is missing")
        else:
            parts.append(f"{loc}: {err['msg']}, got {_short(err.get('input'))}")
    return "; ".join(parts)

"""Parser for Contrast scan-controller streams: :func:`parse` turns a ``StreamData`` into a packet.

Contrast sends pickles, and a plain ``pickle.loads`` of a received frame would run any code the
sender names. The frame is therefore decoded with
:func:`dranspose.protocols.common.safe_pickle.safe_loads`, which builds only plain data,
``OrderedDict`` and numpy values, and the resulting dict is validated by the packet model its
``status`` selects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Optional, Union

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.json_header import packet_class, validate
from dranspose.protocols.common.safe_pickle import safe_loads
from dranspose.protocols.common.stream_argument import stream_argument
from dranspose.protocols.contrast.packets import (
    ContrastFinished,
    ContrastHeartbeat,
    ContrastRunning,
    ContrastStarted,
)

__all__ = ["ParseError", "parse"]

_Packet = Union[ContrastStarted, ContrastRunning, ContrastFinished, ContrastHeartbeat]
_PACKETS: dict[str, type[_Packet]] = {
    "started": ContrastStarted,
    "running": ContrastRunning,
    "finished": ContrastFinished,
    "heartbeat": ContrastHeartbeat,
}


def parse(
    data: Optional[StreamData] = None, *, stream_data: Optional[StreamData] = None
) -> _Packet:
    """Decode one Contrast message into the packet its ``status`` names.

    The stream is passed as ``data`` (the original dranspose's name: ``parse(stream)`` or
    ``parse(data=stream)``) or as ``stream_data``.

    Raises :class:`ParseError` naming the stream type and what was wrong when the message is not
    exactly one frame holding a pickled dict with a known ``status``, or when the pickle names
    anything besides plain data and numpy values. Any ``typ`` is accepted.
    """
    stream: StreamData = stream_argument(data, stream_data, "contrast.parse")
    typ = stream.typ
    frames = stream.frames
    if len(frames) != 1:
        raise ParseError(
            f"{typ} message has {len(frames)} frames; expected exactly one frame holding a "
            f"pickled dict"
        )
    where = f"{typ} frame 0"
    message = safe_loads(frames[0], where)
    if not isinstance(message, Mapping):
        raise ParseError(
            f"{where}: unpickled a {type(message).__name__}, expected a dict with a 'status' key"
        )
    cls = packet_class(message, "status", _PACKETS, where, noun="key")
    status = message["status"]
    for key in message:
        if type(key) is not str:
            raise ParseError(f"{where}: {status!r} message has a key {key!r:.60} that is not a str")
    return validate(cls, message, f"{where}: invalid {status!r} message", dotted=True)

"""``dranspose.data.contrast``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.contrast.packets`. ``StreamData`` is importable here as it was in the
original dranspose."""

from dranspose.core.event import StreamData
from dranspose.protocols.contrast.packets import (
    CONTRAST_TYPE,
    ContrastBase,
    ContrastFinished,
    ContrastHeartbeat,
    ContrastMessage,
    ContrastPacket,
    ContrastPacketAdapter,
    ContrastPacketType,
    ContrastRunning,
    ContrastStarted,
)

__all__ = [
    "CONTRAST_TYPE",
    "ContrastBase",
    "ContrastFinished",
    "ContrastHeartbeat",
    "ContrastMessage",
    "ContrastPacket",
    "ContrastPacketAdapter",
    "ContrastPacketType",
    "ContrastRunning",
    "ContrastStarted",
    "StreamData",
]

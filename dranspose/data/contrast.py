"""``dranspose.data.contrast``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.contrast.packets`."""

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
]

"""``dranspose.data.contrast``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.contrast.packets`."""

from dranspose.protocols.contrast.packets import (  # noqa: F401
    CONTRAST_TYPE,
    ContrastBase,
    ContrastStarted,
    ContrastRunning,
    ContrastFinished,
    ContrastHeartbeat,
    ContrastMessage,
    ContrastPacket,
    ContrastPacketAdapter,
    ContrastPacketType,
)

__all__ = [
    "CONTRAST_TYPE",
    "ContrastBase",
    "ContrastStarted",
    "ContrastRunning",
    "ContrastFinished",
    "ContrastHeartbeat",
    "ContrastMessage",
    "ContrastPacket",
    "ContrastPacketAdapter",
    "ContrastPacketType",
]

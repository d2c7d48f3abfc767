"""``dranspose.data.lecroy``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.lecroy.packets`."""

from dranspose.protocols.lecroy.packets import (  # noqa: F401
    LECROY_TYPE,
    LecroyBase,
    LecroyMessage,
    LecroyPrepare,
    LecroySeqStart,
    LecroySeqEnd,
    LecroyEnd,
    LecroyData,
    LecroyParsed,
    LecroyControl,
    LecroyPacketType,
    LecroyPacketAdapter,
    LecroyPacket,
    PREPARE,
    SEQ_END,
    SEQ_START,
    STOP,
)

__all__ = [
    "LECROY_TYPE",
    "LecroyBase",
    "LecroyMessage",
    "LecroyPrepare",
    "LecroySeqStart",
    "LecroySeqEnd",
    "LecroyEnd",
    "LecroyData",
    "LecroyParsed",
    "LecroyControl",
    "LecroyPacketType",
    "LecroyPacketAdapter",
    "LecroyPacket",
    "PREPARE",
    "SEQ_END",
    "SEQ_START",
    "STOP",
]

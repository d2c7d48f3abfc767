"""``dranspose.data.lecroy``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.lecroy.packets`."""

from dranspose.protocols.lecroy.packets import (
    LECROY_TYPE,
    PREPARE,
    SEQ_END,
    SEQ_START,
    STOP,
    LecroyBase,
    LecroyControl,
    LecroyData,
    LecroyEnd,
    LecroyMessage,
    LecroyPacket,
    LecroyPacketAdapter,
    LecroyPacketType,
    LecroyParsed,
    LecroyPrepare,
    LecroySeqEnd,
    LecroySeqStart,
)

__all__ = [
    "LECROY_TYPE",
    "PREPARE",
    "SEQ_END",
    "SEQ_START",
    "STOP",
    "LecroyBase",
    "LecroyControl",
    "LecroyData",
    "LecroyEnd",
    "LecroyMessage",
    "LecroyPacket",
    "LecroyPacketAdapter",
    "LecroyPacketType",
    "LecroyParsed",
    "LecroyPrepare",
    "LecroySeqEnd",
    "LecroySeqStart",
]

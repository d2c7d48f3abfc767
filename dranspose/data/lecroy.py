"""``dranspose.data.lecroy``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.lecroy.packets`. ``NDArray`` and ``StreamData`` are re-exported because
the original dranspose's module imported them and payloads import them from here."""

from dranspose.core.event import StreamData
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
    NDArray,
    WhatEnum,
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
    "NDArray",
    "StreamData",
    "WhatEnum",
]

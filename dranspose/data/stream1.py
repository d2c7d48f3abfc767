"""``dranspose.data.stream1``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.stream1.packets`. ``StreamData`` is importable here as it was in the
original dranspose."""

from dranspose.core.event import StreamData
from dranspose.protocols.stream1.packets import (
    BSLZ4_HEADER,
    COMPRESSIONS,
    STINS,
    LazyData,
    PendingData,
    Stream1,
    Stream1Base,
    Stream1Data,
    Stream1End,
    Stream1Packet,
    Stream1PacketAdapter,
    Stream1PacketType,
    Stream1Start,
    default_block_size,
    encode_bslz4,
    encode_frame,
)

__all__ = [
    "BSLZ4_HEADER",
    "COMPRESSIONS",
    "STINS",
    "LazyData",
    "PendingData",
    "Stream1",
    "Stream1Base",
    "Stream1Data",
    "Stream1End",
    "Stream1Packet",
    "Stream1PacketAdapter",
    "Stream1PacketType",
    "Stream1Start",
    "StreamData",
    "default_block_size",
    "encode_bslz4",
    "encode_frame",
]

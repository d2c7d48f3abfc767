"""``dranspose.data.stream1``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.stream1.packets`."""

from dranspose.protocols.stream1.packets import (  # noqa: F401
    STINS,
    BSLZ4_HEADER,
    COMPRESSIONS,
    default_block_size,
    encode_frame,
    encode_bslz4,
    PendingData,
    LazyData,
    Stream1Base,
    Stream1Start,
    Stream1Data,
    Stream1End,
    Stream1PacketType,
    Stream1PacketAdapter,
    Stream1Packet,
)

__all__ = [
    "STINS",
    "BSLZ4_HEADER",
    "COMPRESSIONS",
    "default_block_size",
    "encode_frame",
    "encode_bslz4",
    "PendingData",
    "LazyData",
    "Stream1Base",
    "Stream1Start",
    "Stream1Data",
    "Stream1End",
    "Stream1PacketType",
    "Stream1PacketAdapter",
    "Stream1Packet",
]

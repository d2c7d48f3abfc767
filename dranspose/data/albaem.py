"""``dranspose.data.albaem``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.albaem.packets`."""

from dranspose.protocols.albaem.packets import (
    ALBAEM_TYPE,
    AlbaemBase,
    AlbaemData,
    AlbaemEnd,
    AlbaemPacket,
    AlbaemPacketAdapter,
    AlbaemPacketType,
    AlbaemStart,
)

__all__ = [
    "ALBAEM_TYPE",
    "AlbaemBase",
    "AlbaemData",
    "AlbaemEnd",
    "AlbaemPacket",
    "AlbaemPacketAdapter",
    "AlbaemPacketType",
    "AlbaemStart",
]

"""``dranspose.data.albaem``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.albaem.packets`."""

from dranspose.protocols.albaem.packets import (  # noqa: F401
    ALBAEM_TYPE,
    AlbaemBase,
    AlbaemStart,
    AlbaemData,
    AlbaemEnd,
    AlbaemPacketType,
    AlbaemPacketAdapter,
    AlbaemPacket,
)

__all__ = [
    "ALBAEM_TYPE",
    "AlbaemBase",
    "AlbaemStart",
    "AlbaemData",
    "AlbaemEnd",
    "AlbaemPacketType",
    "AlbaemPacketAdapter",
    "AlbaemPacket",
]

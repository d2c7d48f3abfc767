"""``dranspose.data.positioncap``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.positioncap.packets`."""

from dranspose.protocols.positioncap.packets import (  # noqa: F401
    POSITIONCAP_TYPE,
    FIELD_TYPES,
    utc_naive,
    PositionCapField,
    PositionCapBase,
    PositionCapStart,
    PositionCapValues,
    PositionCapEnd,
    PositionCapPacketType,
    PositionCapPacketAdapter,
    PositionCapPacket,
)

__all__ = [
    "POSITIONCAP_TYPE",
    "FIELD_TYPES",
    "utc_naive",
    "PositionCapField",
    "PositionCapBase",
    "PositionCapStart",
    "PositionCapValues",
    "PositionCapEnd",
    "PositionCapPacketType",
    "PositionCapPacketAdapter",
    "PositionCapPacket",
]

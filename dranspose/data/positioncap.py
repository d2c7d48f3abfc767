"""``dranspose.data.positioncap``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.positioncap.packets`. ``StreamData`` is re-exported because
the original dranspose's module imported it and payloads import it from here."""

from dranspose.core.event import StreamData
from dranspose.protocols.positioncap.packets import (
    FIELD_TYPES,
    POSITIONCAP_TYPE,
    PositionCapBase,
    PositionCapEnd,
    PositionCapField,
    PositionCapPacket,
    PositionCapPacketAdapter,
    PositionCapPacketType,
    PositionCapStart,
    PositionCapValues,
    utc_naive,
)

__all__ = [
    "FIELD_TYPES",
    "POSITIONCAP_TYPE",
    "PositionCapBase",
    "PositionCapEnd",
    "PositionCapField",
    "PositionCapPacket",
    "PositionCapPacketAdapter",
    "PositionCapPacketType",
    "PositionCapStart",
    "PositionCapValues",
    "StreamData",
    "utc_naive",
]

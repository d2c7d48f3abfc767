"""``dranspose.data.sardana``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.sardana.packets`."""

from dranspose.protocols.sardana.packets import (
    SARDANA_ENDPOINTS,
    SARDANA_TYPE,
    SardanaBase,
    SardanaColumnDesc,
    SardanaDataDescription,
    SardanaPacket,
    SardanaPacketAdapter,
    SardanaPacketType,
    SardanaRecordData,
    SardanaRecordEnd,
)

__all__ = [
    "SARDANA_ENDPOINTS",
    "SARDANA_TYPE",
    "SardanaBase",
    "SardanaColumnDesc",
    "SardanaDataDescription",
    "SardanaPacket",
    "SardanaPacketAdapter",
    "SardanaPacketType",
    "SardanaRecordData",
    "SardanaRecordEnd",
]

"""``dranspose.data.sardana``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.sardana.packets`."""

from dranspose.protocols.sardana.packets import (  # noqa: F401
    SARDANA_TYPE,
    SARDANA_ENDPOINTS,
    SardanaBase,
    SardanaColumnDesc,
    SardanaDataDescription,
    SardanaRecordData,
    SardanaRecordEnd,
    SardanaPacketType,
    SardanaPacketAdapter,
    SardanaPacket,
)

__all__ = [
    "SARDANA_TYPE",
    "SARDANA_ENDPOINTS",
    "SardanaBase",
    "SardanaColumnDesc",
    "SardanaDataDescription",
    "SardanaRecordData",
    "SardanaRecordEnd",
    "SardanaPacketType",
    "SardanaPacketAdapter",
    "SardanaPacket",
]

"""``dranspose.data.sardana``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.sardana.packets`. ``StreamData`` is re-exported because
the original dranspose's module imported it and payloads import it from here."""

from dranspose.core.event import StreamData
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
    "StreamData",
]

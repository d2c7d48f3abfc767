"""``dranspose.data.pcap``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.pcap.packets`. ``StreamData`` is re-exported because
the original dranspose's module imported it and payloads import it from here."""

from dranspose.core.event import StreamData
from dranspose.protocols.pcap.packets import (
    PCAP_TYPE,
    PCAPBase,
    PCAPData,
    PCAPEnd,
    PCAPPacket,
    PCAPPacketAdapter,
    PCAPPacketType,
    PCAPStart,
    as_column,
)

__all__ = [
    "PCAP_TYPE",
    "PCAPBase",
    "PCAPData",
    "PCAPEnd",
    "PCAPPacket",
    "PCAPPacketAdapter",
    "PCAPPacketType",
    "PCAPStart",
    "StreamData",
    "as_column",
]

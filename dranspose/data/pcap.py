"""``dranspose.data.pcap``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.pcap.packets`."""

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
    "as_column",
]

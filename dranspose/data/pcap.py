"""``dranspose.data.pcap``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.pcap.packets`."""

from dranspose.protocols.pcap.packets import (  # noqa: F401
    PCAP_TYPE,
    as_column,
    PCAPBase,
    PCAPStart,
    PCAPData,
    PCAPEnd,
    PCAPPacketType,
    PCAPPacketAdapter,
    PCAPPacket,
)

__all__ = [
    "PCAP_TYPE",
    "as_column",
    "PCAPBase",
    "PCAPStart",
    "PCAPData",
    "PCAPEnd",
    "PCAPPacketType",
    "PCAPPacketAdapter",
    "PCAPPacket",
]

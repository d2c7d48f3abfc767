"""``dranspose.middlewares.pcap``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.pcap.parser`. ``PCAPPacket`` and ``StreamData`` are re-exported because
the original dranspose's module imported them and payloads import them from here."""

from dranspose.core.event import StreamData
from dranspose.protocols.pcap.packets import PCAPPacket
from dranspose.protocols.pcap.parser import (
    ParseError,
    parse,
)

__all__ = [
    "PCAPPacket",
    "ParseError",
    "StreamData",
    "parse",
]

"""``dranspose.middlewares.pcap``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.pcap.parser`."""

from dranspose.protocols.pcap.parser import (
    ParseError,
    parse,
)

__all__ = [
    "ParseError",
    "parse",
]

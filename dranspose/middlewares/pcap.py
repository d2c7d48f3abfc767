"""``dranspose.middlewares.pcap``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.pcap.parser`."""

from dranspose.protocols.pcap.parser import (  # noqa: F401
    parse,
    ParseError,
)

__all__ = [
    "parse",
    "ParseError",
]

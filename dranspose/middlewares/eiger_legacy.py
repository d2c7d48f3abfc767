"""``dranspose.middlewares.eiger_legacy``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.eiger_legacy.parser`."""

from dranspose.protocols.eiger_legacy.parser import (
    Frame,
    ParseError,
    parse,
)

__all__ = [
    "Frame",
    "ParseError",
    "parse",
]

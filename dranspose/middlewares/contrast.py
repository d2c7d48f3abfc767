"""``dranspose.middlewares.contrast``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.contrast.parser`."""

from dranspose.protocols.contrast.parser import (
    ParseError,
    parse,
)

__all__ = [
    "ParseError",
    "parse",
]

"""``dranspose.middlewares.albaem``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.albaem.parser`."""

from dranspose.protocols.albaem.parser import (
    ParseError,
    parse,
)

__all__ = [
    "ParseError",
    "parse",
]

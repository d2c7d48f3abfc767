"""``dranspose.middlewares.lecroy``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.lecroy.parser`."""

from dranspose.protocols.lecroy.parser import (
    ParseError,
    parse,
)

__all__ = [
    "ParseError",
    "parse",
]

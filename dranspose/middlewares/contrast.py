"""``dranspose.middlewares.contrast``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.contrast.parser`."""

from dranspose.protocols.contrast.parser import (  # noqa: F401
    parse,
    ParseError,
)

__all__ = [
    "parse",
    "ParseError",
]

"""``dranspose.middlewares.lecroy``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.lecroy.parser`."""

from dranspose.protocols.lecroy.parser import (  # noqa: F401
    parse,
    ParseError,
)

__all__ = [
    "parse",
    "ParseError",
]

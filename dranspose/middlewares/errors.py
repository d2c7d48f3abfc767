"""``dranspose.middlewares.errors``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.common.errors`."""

from dranspose.protocols.common.errors import (
    ParseError,
)

__all__ = [
    "ParseError",
]

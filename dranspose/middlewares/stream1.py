"""``dranspose.middlewares.stream1``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.stream1.parser`."""

from dranspose.protocols.stream1.parser import (  # noqa: F401
    parse,
    set_data,
    check_compressed,
    ParseError,
)

__all__ = [
    "parse",
    "set_data",
    "check_compressed",
    "ParseError",
]

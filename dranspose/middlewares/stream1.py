"""``dranspose.middlewares.stream1``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.stream1.parser`."""

from dranspose.protocols.stream1.parser import (
    ParseError,
    check_compressed,
    parse,
    set_data,
)

__all__ = [
    "ParseError",
    "check_compressed",
    "parse",
    "set_data",
]

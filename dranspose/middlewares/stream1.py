"""``dranspose.middlewares.stream1``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.stream1.parser`. The packet names the original dranspose imported here
(``Stream1Data``, ``Stream1Packet``, ``StreamData``) stay importable from it."""

from dranspose.core.event import StreamData
from dranspose.protocols.stream1.packets import Stream1Data, Stream1Packet
from dranspose.protocols.stream1.parser import (
    ParseError,
    check_compressed,
    parse,
    set_data,
)

__all__ = [
    "ParseError",
    "Stream1Data",
    "Stream1Packet",
    "StreamData",
    "check_compressed",
    "parse",
    "set_data",
]

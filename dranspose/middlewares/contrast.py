"""``dranspose.middlewares.contrast``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.contrast.parser`. The names the original dranspose imported here
(``ContrastPacket``, ``StreamData``) stay importable from it."""

from dranspose.core.event import StreamData
from dranspose.protocols.contrast.packets import ContrastPacket
from dranspose.protocols.contrast.parser import (
    ParseError,
    parse,
)

__all__ = [
    "ContrastPacket",
    "ParseError",
    "StreamData",
    "parse",
]

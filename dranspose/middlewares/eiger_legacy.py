"""``dranspose.middlewares.eiger_legacy``: a public import path kept for payloads; the code lives
in :mod:`dranspose.protocols.eiger_legacy.parser`. The names the original dranspose imported here
(``EigerLegacyHeader``, ``EigerLegacyImage``, ``EigerLegacyPacket``, ``StreamData``) stay
importable from it."""

from dranspose.core.event import StreamData
from dranspose.protocols.eiger_legacy.packets import (
    EigerLegacyHeader,
    EigerLegacyImage,
    EigerLegacyPacket,
)
from dranspose.protocols.eiger_legacy.parser import (
    Frame,
    ParseError,
    parse,
)

__all__ = [
    "EigerLegacyHeader",
    "EigerLegacyImage",
    "EigerLegacyPacket",
    "Frame",
    "ParseError",
    "StreamData",
    "parse",
]

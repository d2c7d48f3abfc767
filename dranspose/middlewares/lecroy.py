"""``dranspose.middlewares.lecroy``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.lecroy.parser`. The packet names and ``StreamData`` are re-exported
because the original dranspose's module imported them and payloads import them from here."""

from dranspose.core.event import StreamData
from dranspose.protocols.lecroy.packets import (
    LECROY_TYPE,
    LecroyBase,
    LecroyData,
    LecroyEnd,
    LecroyPacket,
    LecroyParsed,
    LecroyPrepare,
    LecroySeqStart,
)
from dranspose.protocols.lecroy.parser import (
    ParseError,
    parse,
)

__all__ = [
    "LECROY_TYPE",
    "LecroyBase",
    "LecroyData",
    "LecroyEnd",
    "LecroyPacket",
    "LecroyParsed",
    "LecroyPrepare",
    "LecroySeqStart",
    "ParseError",
    "StreamData",
    "parse",
]

"""``dranspose.middlewares.sardana``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.sardana.parser`. ``SardanaPacket`` and ``StreamData`` are re-exported
because the original dranspose's module imported them and payloads import them from here."""

from dranspose.core.event import StreamData
from dranspose.protocols.sardana.packets import SardanaPacket
from dranspose.protocols.sardana.parser import (
    IGNORED_ENDPOINTS,
    POST_ENDPOINTS,
    ParseError,
    frame_for_post,
    parse,
    post_for_frame,
)

__all__ = [
    "IGNORED_ENDPOINTS",
    "POST_ENDPOINTS",
    "ParseError",
    "SardanaPacket",
    "StreamData",
    "frame_for_post",
    "parse",
    "post_for_frame",
]

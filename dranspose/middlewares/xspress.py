"""``dranspose.middlewares.xspress``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.xspress3.parser`. The names the original dranspose imported here
(``XspressImage``, ``XspressPacket``, ``StreamData``) stay importable from it."""

from dranspose.core.event import StreamData
from dranspose.protocols.xspress3.packets import XspressImage, XspressPacket
from dranspose.protocols.xspress3.parser import (
    Frame,
    FrameGrouper,
    ParseError,
    SkipCallback,
    group_single_frames,
    parse,
)

__all__ = [
    "Frame",
    "FrameGrouper",
    "ParseError",
    "SkipCallback",
    "StreamData",
    "XspressImage",
    "XspressPacket",
    "group_single_frames",
    "parse",
]

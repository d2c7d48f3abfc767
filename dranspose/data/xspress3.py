"""``dranspose.data.xspress3``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.xspress3.packets`. ``StreamData`` is importable here as it was in the
original dranspose."""

from dranspose.core.event import StreamData
from dranspose.protocols.xspress3.packets import (
    META_NAMES,
    WINDOW_COUNTS,
    XSPRESS_TYPE,
    XspressBase,
    XspressEnd,
    XspressImage,
    XspressMessage,
    XspressPacket,
    XspressPacketAdapter,
    XspressPacketType,
    XspressStart,
)

__all__ = [
    "META_NAMES",
    "WINDOW_COUNTS",
    "XSPRESS_TYPE",
    "StreamData",
    "XspressBase",
    "XspressEnd",
    "XspressImage",
    "XspressMessage",
    "XspressPacket",
    "XspressPacketAdapter",
    "XspressPacketType",
    "XspressStart",
]

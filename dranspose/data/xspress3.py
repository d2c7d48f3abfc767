"""``dranspose.data.xspress3``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.xspress3.packets`."""

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
    "XspressBase",
    "XspressEnd",
    "XspressImage",
    "XspressMessage",
    "XspressPacket",
    "XspressPacketAdapter",
    "XspressPacketType",
    "XspressStart",
]

"""``dranspose.data.xspress3``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.xspress3.packets`."""

from dranspose.protocols.xspress3.packets import (  # noqa: F401
    XSPRESS_TYPE,
    META_NAMES,
    WINDOW_COUNTS,
    XspressBase,
    XspressStart,
    XspressImage,
    XspressEnd,
    XspressMessage,
    XspressPacket,
    XspressPacketAdapter,
    XspressPacketType,
)

__all__ = [
    "XSPRESS_TYPE",
    "META_NAMES",
    "WINDOW_COUNTS",
    "XspressBase",
    "XspressStart",
    "XspressImage",
    "XspressEnd",
    "XspressMessage",
    "XspressPacket",
    "XspressPacketAdapter",
    "XspressPacketType",
]

"""``dranspose.data.eiger_legacy``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.eiger_legacy.packets`."""

from dranspose.protocols.eiger_legacy.packets import (
    CONFIG_HTYPE,
    EIGER_LEGACY_TYPE,
    HEADER_ARRAYS,
    HEADER_DETAIL_FRAMES,
    EigerImageArray,
    EigerLegacy,
    EigerLegacyBase,
    EigerLegacyEnd,
    EigerLegacyHeader,
    EigerLegacyImage,
    EigerLegacyPacket,
    EigerLegacyPacketAdapter,
    EigerLegacyPacketType,
    Encoding,
    numpy_shape,
    parse_encoding,
)

__all__ = [
    "CONFIG_HTYPE",
    "EIGER_LEGACY_TYPE",
    "HEADER_ARRAYS",
    "HEADER_DETAIL_FRAMES",
    "EigerImageArray",
    "EigerLegacy",
    "EigerLegacyBase",
    "EigerLegacyEnd",
    "EigerLegacyHeader",
    "EigerLegacyImage",
    "EigerLegacyPacket",
    "EigerLegacyPacketAdapter",
    "EigerLegacyPacketType",
    "Encoding",
    "numpy_shape",
    "parse_encoding",
]

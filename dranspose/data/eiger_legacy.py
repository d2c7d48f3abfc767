"""``dranspose.data.eiger_legacy``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.eiger_legacy.packets`."""

from dranspose.protocols.eiger_legacy.packets import (  # noqa: F401
    EIGER_LEGACY_TYPE,
    HEADER_DETAIL_FRAMES,
    HEADER_ARRAYS,
    Encoding,
    parse_encoding,
    numpy_shape,
    EigerLegacyBase,
    EigerLegacyHeader,
    EigerLegacyImage,
    EigerLegacyEnd,
    EigerLegacyPacketType,
    EigerLegacyPacketAdapter,
    EigerLegacyPacket,
)

__all__ = [
    "EIGER_LEGACY_TYPE",
    "HEADER_DETAIL_FRAMES",
    "HEADER_ARRAYS",
    "Encoding",
    "parse_encoding",
    "numpy_shape",
    "EigerLegacyBase",
    "EigerLegacyHeader",
    "EigerLegacyImage",
    "EigerLegacyEnd",
    "EigerLegacyPacketType",
    "EigerLegacyPacketAdapter",
    "EigerLegacyPacket",
]

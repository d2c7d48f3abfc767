"""Packets of the Dectris EIGER "legacy" stream: the SIMPLON stream interface, version 1.

Dectris detectors push ZMQ multipart messages whose frames are JSON objects tagged by ``htype``
(plus binary frames). The first frame says which message it is:

* ``"dheader-1.0"`` (:class:`EigerLegacyHeader`) opens series ``series``. How many frames follow
  depends on ``header_detail``: ``"none"`` nothing; ``"basic"`` the detector configuration (a
  JSON object); ``"all"`` the configuration and then three descriptor/data pairs: flatfield
  (``"dflatfield-1.0"``), pixel mask (``"dpixelmask-1.0"``) and count-rate table
  (``"dcountrate_table-1.0"``), each a JSON ``shape``/``type`` followed by the raw
  little-endian values. A header appendix, if configured, comes last.
* ``"dimage-1.0"`` (:class:`EigerLegacyImage`) is one image: the ``"dimage_d-1.0"`` descriptor
  (``shape``, ``type``, ``encoding``, ``size``), the data frame, the ``"dconfig-1.0"`` timing
  (``start_time``, ``stop_time``, ``real_time`` in ns) and, if configured, the image appendix.
* ``"dseries_end-1.0"`` (:class:`EigerLegacyEnd`) closes the series.

Dectris gives shapes as ``[x, y]``, fastest axis first; the numpy arrays here have the reverse
order (rows, columns), so an EIGER2 9M image of shape ``[3108, 3262]`` is an array of shape
``(3262, 3108)``.

``encoding`` is ``[bs<bits>-][lz4]<byte order>``: ``"<"`` raw little-endian, ``"lz4<"`` one LZ4
block, ``"bs32-lz4<"`` (``bs16``, ``bs8``) bitshuffle/LZ4 with the 12-byte header of the HDF5
bitshuffle filter (``bslz4``, see :mod:`dranspose.protocols.stream1.packets`); the bit count is the pixel
size. Parsed compressed images are decoded on the first read of ``data``, which is an
:class:`EigerImageArray`: the image, which also answers the original dranspose's string keys
(``data["buffer"]``, ``data["shape"]``, ...).

:func:`dranspose.protocols.eiger_legacy.parser.parse` decodes received frames, the data included;
``to_stream_data`` builds frames for synthetic sources and tests.

The constructors accept every call the original dranspose 0.2.0 accepted, whose models knew only
``htype`` (and an image's ``frame``): ``series``, ``header_detail`` and the image's descriptor
fields and ``data`` default to ``None`` when built. Received messages always carry them, so the
parser requires them, and so does ``to_stream_data``, which says which are missing.
:class:`EigerLegacy` is the original's name of the base class.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Optional, Union, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, field_validator

from dranspose.core.event import StreamData
from dranspose.protocols.eiger_legacy.image import EigerImageArray
from dranspose.protocols.stream1.packets import LazyData, PendingData, encode_bslz4

EIGER_LEGACY_TYPE = "EIGER_LEGACY"
"""The stream type ingesters give EIGER legacy streams."""

HEADER_DETAIL_FRAMES = {"none": 1, "basic": 2, "all": 8}
"""Frames of a series header for each ``header_detail``, not counting an appendix."""

HEADER_ARRAYS = (
    ("flatfield", "dflatfield-1.0"),
    ("pixel_mask", "dpixelmask-1.0"),
    ("countrate_table", "dcountrate_table-1.0"),
)
"""The header's array attributes in frame order, with the ``htype`` of their descriptors."""

CONFIG_HTYPE = "dconfig-1.0"
"""The ``htype`` of an image's timing frame, kept in :attr:`EigerLegacyImage.config`."""

_ENCODING = re.compile(r"(?:bs(8|16|32|64)-)?(lz4)?([<>])\Z")


class Encoding(NamedTuple):
    """An ``encoding`` string taken apart."""

    bitshuffle_bits: Optional[int]
    """Element size in bits for bitshuffle/LZ4, ``None`` if not bitshuffled."""
    lz4: bool
    byteorder: Literal["<", ">"]


def parse_encoding(encoding: str) -> Optional[Encoding]:
    """Split an ``encoding`` such as ``"bs32-lz4<"``; ``None`` if it is not of that form."""
    match = _ENCODING.match(encoding)
    if match is None:
        return None
    bits, lz4, order = match.groups()
    if bits is not None and lz4 is None:
        return None
    return Encoding(int(bits) if bits else None, lz4 is not None, "<" if order == "<" else ">")


def numpy_shape(shape: list[int]) -> tuple[int, ...]:
    """The numpy shape of data Dectris describes as ``shape`` (``[x, y]`` becomes ``(y, x)``)."""
    return tuple(reversed(shape))


class EigerLegacy(BaseModel):
    """Common behaviour; unknown fields of the first JSON frame are kept as extras.

    The original dranspose's name of the base class; :data:`EigerLegacyBase` is the same class.
    """

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    _later_frames: ClassVar[frozenset[str]] = frozenset()
    _sent_fields: ClassVar[tuple[str, ...]] = ()
    """Fields a built packet may leave out but every message on the wire carries."""

    def missing_fields(self) -> list[str]:
        """The fields the detector always sends that this packet does not have."""
        return [name for name in self._sent_fields if getattr(self, name) is None]

    def _require_sent_fields(self) -> None:
        missing = self.missing_fields()
        if missing:
            raise ValueError(
                f"{type(self).__name__} cannot be sent without {', '.join(missing)}; the "
                f"detector always sends them"
            )

    def header_frame(self) -> bytes:
        """The first JSON frame of this message (fields from later frames left out)."""
        return self.model_dump_json(exclude=set(self._later_frames)).encode()

    def to_stream_data(self, typ: str = EIGER_LEGACY_TYPE) -> StreamData:
        """The frames the detector sends for this message."""
        self._require_sent_fields()
        return StreamData(typ=typ, frames=[self.header_frame()])


EigerLegacyBase = EigerLegacy
"""This rewrite's earlier name of :class:`EigerLegacy`."""


class EigerLegacyHeader(EigerLegacy):
    """Start of series ``series``.

    ``info`` is the detector configuration (``"basic"`` and ``"all"``); ``flatfield``
    (float32), ``pixel_mask`` (uint32) and ``countrate_table`` (float32) are set for ``"all"``
    and are views of the received frames in numpy order. ``appendix`` is the header appendix:
    its JSON value, or the raw bytes when it is not JSON; ``None`` when there is none.
    """

    _later_frames = frozenset({"info"})
    _sent_fields = ("series", "header_detail")

    htype: Literal["dheader-1.0"] = "dheader-1.0"
    series: Optional[int] = None
    header_detail: Optional[Literal["all", "basic", "none"]] = None
    info: Optional[dict[str, Any]] = None
    flatfield: Optional[np.ndarray] = Field(default=None, exclude=True)
    pixel_mask: Optional[np.ndarray] = Field(default=None, exclude=True)
    countrate_table: Optional[np.ndarray] = Field(default=None, exclude=True)
    appendix: Any = Field(default=None, exclude=True)

    def to_stream_data(self, typ: str = EIGER_LEGACY_TYPE) -> StreamData:
        """The header frames ``header_detail`` calls for, then the appendix if there is one."""
        self._require_sent_fields()
        frames: list[Any] = [self.header_frame()]
        if self.header_detail != "none":
            if self.info is None:
                raise ValueError(f"header_detail {self.header_detail!r} needs info")
            frames.append(json.dumps(self.info).encode())
        if self.header_detail == "all":
            for name, htype in HEADER_ARRAYS:
                value = getattr(self, name)
                if value is None:
                    raise ValueError(f"header_detail 'all' needs {name}")
                arr = np.asarray(value)
                little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
                descriptor = {
                    "htype": htype,
                    "shape": list(numpy_shape(list(arr.shape))),
                    "type": arr.dtype.name,
                }
                frames.append(json.dumps(descriptor).encode())
                frames.append(np.ascontiguousarray(little).tobytes())
        if self.appendix is not None:
            frames.append(_appendix_frame(self.appendix))
        return StreamData(typ=typ, frames=frames)


class EigerLegacyImage(LazyData, EigerLegacy):
    """One image of series ``series``.

    ``shape`` (``[x, y]``), ``type``, ``encoding`` and ``size`` (bytes of the data frame) come
    from the ``"dimage_d-1.0"`` descriptor; ``data`` is the decoded image in numpy order, of
    dtype ``type`` in the encoding's byte order. For the raw encodings it is a view of the
    received frame, read-only when the frame is ``bytes``. A parsed compressed image
    (``bs<bits>-lz4``, ``lz4``) is decoded on the first read of ``data`` into a writable array
    that is kept; a frame that does not decode raises the
    :class:`~dranspose.protocols.common.errors.ParseError` from that read, so a payload reading
    only the raw frame (``event.streams[...].frames[2]``) never pays for or sees our decoding.

    A parsed image's ``data`` is an :class:`EigerImageArray`: the array above, which also
    answers string keys as the original dranspose's ``data`` dict did (``data["buffer"]``, the
    raw frame as ``bytes``, ``data["shape"]``, ``data["type"]``, ``data["encoding"]``,
    ``data["htype"]``, ``data["size"]``, ``keys()``, ``get()``, ...). It is that class only once
    decoded: reading ``data["buffer"]`` of a compressed image reads ``data`` first, so it decodes
    the pixels (and raises a decoding error); a payload wanting only the raw frame without that
    reads ``frames[2]``. An image built by hand keeps the ``data`` it was given.

    ``config`` is the ``"dconfig-1.0"`` object (``htype``, ``start_time``, ``stop_time``,
    ``real_time`` in ns), as in the original; a hand-built ``config`` without ``htype`` gets
    it. ``appendix`` is the image appendix as for the header.
    """

    _later_frames = frozenset({"shape", "type", "encoding", "size", "config"})
    _sent_fields = ("series", "shape", "type", "encoding", "data")

    htype: Literal["dimage-1.0"] = "dimage-1.0"
    series: Optional[int] = None
    frame: int
    hash: Optional[str] = None
    shape: Optional[list[int]] = None
    type: Optional[str] = None
    encoding: Optional[str] = None
    size: Optional[int] = None
    data: Optional[np.ndarray] = Field(default=None, exclude=True)
    config: dict[str, Any] = Field(default_factory=lambda: {"htype": CONFIG_HTYPE})
    _pending_data: Optional[PendingData] = PrivateAttr(default=None)
    appendix: Any = Field(default=None, exclude=True)

    @field_validator("config")
    @classmethod
    def _config_htype(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The ``dconfig-1.0`` object as the detector sends it, ``htype`` first."""
        if "htype" in config:
            return config
        return {"htype": CONFIG_HTYPE, **config}

    @classmethod
    def from_array(
        cls,
        array: Any,
        *,
        series: int,
        frame: int,
        encoding: str = "bs32-lz4<",
        **extra: Any,
    ) -> EigerLegacyImage:
        """An image whose ``shape`` and ``type`` are taken from ``array`` (numpy order)."""
        arr = np.asarray(array)
        return cls(
            series=series,
            frame=frame,
            shape=list(numpy_shape(list(arr.shape))),
            type=arr.dtype.name,
            encoding=encoding,
            data=arr,
            **extra,
        )

    def payload_frame(self) -> bytes:
        """The data frame: ``data`` encoded as ``encoding`` says."""
        self._require_sent_fields()
        # checked just above: none of them is None
        shape, encoding = cast(list[int], self.shape), cast(str, self.encoding)
        enc = parse_encoding(encoding)
        if enc is None:
            raise ValueError(f"cannot encode {encoding!r}; expected e.g. 'bs32-lz4<'")
        try:
            dtype = np.dtype(self.type).newbyteorder(enc.byteorder)
        except TypeError as exc:
            raise ValueError(f"image type {self.type!r} is not a numpy dtype") from exc
        arr = np.asarray(self.data)
        if arr.shape != numpy_shape(shape):
            raise ValueError(
                f"image shape {shape} needs data of numpy shape "
                f"{list(numpy_shape(shape))}, got {list(arr.shape)}"
            )
        if arr.dtype.newbyteorder("=") != dtype.newbyteorder("="):
            raise ValueError(f"image type is {self.type!r} but data has dtype {arr.dtype}")
        arr = np.ascontiguousarray(arr.astype(dtype, copy=False))
        if enc.bitshuffle_bits is not None:
            if enc.bitshuffle_bits != 8 * dtype.itemsize:
                raise ValueError(
                    f"encoding {self.encoding!r} is for {enc.bitshuffle_bits}-bit pixels but "
                    f"{self.type!r} has {8 * dtype.itemsize}"
                )
            return encode_bslz4(arr)
        if enc.lz4:
            import lz4.block  # optional: only plain-LZ4 streams need it

            return bytes(lz4.block.compress(arr.tobytes(), store_size=False))
        return arr.tobytes()

    def descriptor_frame(self, size: int) -> bytes:
        """The ``"dimage_d-1.0"`` frame for a data frame of ``size`` bytes."""
        descriptor = {
            "htype": "dimage_d-1.0",
            "shape": self.shape,
            "type": self.type,
            "encoding": self.encoding,
            "size": size,
        }
        return json.dumps(descriptor).encode()

    def config_frame_object(self) -> dict[str, Any]:
        """The ``"dconfig-1.0"`` frame's object: ``config`` with ``htype`` ``"dconfig-1.0"``
        first, whatever ``htype`` a hand-built ``config`` held."""
        rest = {key: value for key, value in self.config.items() if key != "htype"}
        return {"htype": CONFIG_HTYPE, **rest}

    def to_stream_data(self, typ: str = EIGER_LEGACY_TYPE) -> StreamData:
        """The four image frames (five with an appendix), data encoded as ``encoding``."""
        payload = self.payload_frame()
        frames: list[Any] = [
            self.header_frame(),
            self.descriptor_frame(len(payload)),
            payload,
            json.dumps(self.config_frame_object()).encode(),
        ]
        if self.appendix is not None:
            frames.append(_appendix_frame(self.appendix))
        return StreamData(typ=typ, frames=frames)


class EigerLegacyEnd(EigerLegacy):
    """End of series ``series``."""

    _sent_fields = ("series",)

    htype: Literal["dseries_end-1.0"] = "dseries_end-1.0"
    series: Optional[int] = None


def _appendix_frame(appendix: Any) -> bytes:
    if isinstance(appendix, (bytes, bytearray, memoryview)):
        return bytes(appendix)
    return json.dumps(appendix).encode()


EigerLegacyPacketType = Annotated[
    Union[EigerLegacyHeader, EigerLegacyImage, EigerLegacyEnd], Field(discriminator="htype")
]
"""Any EIGER legacy message, told apart by the ``htype`` of its first frame."""

EigerLegacyPacketAdapter: TypeAdapter[
    Union[EigerLegacyHeader, EigerLegacyImage, EigerLegacyEnd]
] = TypeAdapter(EigerLegacyPacketType)

EigerLegacyPacket = EigerLegacyPacketAdapter
"""Validates any packet of the protocol (``EigerLegacyPacket.validate_json(first_frame)``), as in
earlier releases; ``EigerLegacyPacketType`` is the union for annotations. Only the fields of the
frames given are set; :func:`dranspose.protocols.eiger_legacy.parser.parse` reads the others."""

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

"""Packets of the STINS ("stream1") protocol.

One upstream ZMQ multipart message is one packet. Its first frame is a JSON header whose ``htype``
says what it is:

* ``"header"``: start of a series (:class:`Stream1Start`), one frame;
* ``"image"``: one detector image (:class:`Stream1Data`); the second frame holds the pixels, raw
  or compressed as given by ``compression`` (``"none"`` or ``"bslz4"``);
* ``"series_end"``: end of the series (:class:`Stream1End`), one frame.

Unknown extra header fields are kept on the models. ``to_stream_data`` builds the frames an
ingester would forward, for synthetic sources and tests; parsing received frames is done by
:func:`dranspose.middlewares.stream1.parse`.

``bslz4`` is the layout Dectris detectors send, identical to one chunk of the HDF5 bitshuffle
filter: an 8-byte big-endian count of uncompressed bytes, a 4-byte big-endian block size in bytes,
then the bitshuffled, LZ4-compressed blocks as produced by the ``bitshuffle`` library.
"""

from __future__ import annotations

import struct
from typing import Annotated, Any, Literal, Optional, Union

import bitshuffle
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dranspose.event import StreamData

STINS = "STINS"
"""The stream type ingesters give STINS streams."""

BSLZ4_HEADER = struct.Struct(">QI")
"""The 12-byte prefix of a bslz4 frame: uncompressed size in bytes, block size in bytes."""

_TARGET_BLOCK_BYTES = 8192
_BLOCK_MULTIPLE = 8
_MIN_BLOCK_ELEMENTS = 128


def default_block_size(itemsize: int) -> int:
    """The block size, in elements, that bitshuffle chooses for items of ``itemsize`` bytes."""
    block = (_TARGET_BLOCK_BYTES // itemsize) // _BLOCK_MULTIPLE * _BLOCK_MULTIPLE
    return max(block, _MIN_BLOCK_ELEMENTS)


def encode_bslz4(array: np.ndarray, block_size: int = 0) -> bytes:
    """Compress ``array`` (C order) into one bslz4 frame, 12-byte header included.

    ``block_size`` is in elements and must be a multiple of 8; 0 picks bitshuffle's default.
    """
    flat = np.ascontiguousarray(array).reshape(-1)
    itemsize = flat.dtype.itemsize
    block = block_size or default_block_size(itemsize)
    if block % _BLOCK_MULTIPLE:
        raise ValueError(f"bslz4 block size must be a multiple of 8 elements, got {block}")
    header = BSLZ4_HEADER.pack(flat.nbytes, block * itemsize)
    if flat.size == 0:
        return header
    return header + bitshuffle.compress_lz4(flat, block).tobytes()


class Stream1Base(BaseModel):
    """Fields every STINS packet has; unknown header fields are kept as extras."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    msg_number: int

    def header_frame(self) -> bytes:
        """The JSON header frame of this packet (without image data)."""
        return self.model_dump_json().encode()

    def to_stream_data(self, typ: str = STINS) -> StreamData:
        """The frames an ingester would forward for this packet."""
        return StreamData(typ=typ, frames=[self.header_frame()])


class Stream1Start(Stream1Base):
    """Start of a series; ``filename`` is where the detector writes (may be empty)."""

    htype: Literal["header"]
    filename: str


class Stream1Data(Stream1Base):
    """One image. ``data`` has ``shape`` and dtype ``type``; it is not part of the JSON header.

    For uncompressed images a parsed ``data`` is a view of the received frame, not a copy: it is
    read-only when the frame is ``bytes``. Copy it before modifying it in place.
    """

    htype: Literal["image"]
    frame: int
    shape: list[int]
    type: str
    compression: Optional[str] = None
    data: np.ndarray = Field(exclude=True)

    @classmethod
    def from_array(
        cls,
        array: Any,
        *,
        msg_number: int,
        frame: int,
        compression: Optional[str] = "none",
        **extra: Any,
    ) -> "Stream1Data":
        """An image packet whose ``shape`` and ``type`` are taken from ``array``."""
        arr = np.asarray(array)
        dtype = arr.dtype
        return cls(
            msg_number=msg_number,
            htype="image",
            frame=frame,
            shape=list(arr.shape),
            type=dtype.name if dtype.isnative else dtype.str,
            compression=compression,
            data=arr,
            **extra,
        )

    def payload_frame(self) -> bytes:
        """The image frame: ``data`` in C order, compressed as ``compression`` says."""
        arr = np.asarray(self.data)
        try:
            dtype = np.dtype(self.type)
        except TypeError as exc:
            raise ValueError(f"image type {self.type!r} is not a numpy dtype") from exc
        if arr.dtype != dtype:
            raise ValueError(f"image type is {self.type!r} but data has dtype {arr.dtype}")
        if list(arr.shape) != list(self.shape):
            raise ValueError(f"image shape is {self.shape} but data has shape {list(arr.shape)}")
        if self.compression is None or self.compression == "none":
            return arr.tobytes()
        if self.compression == "bslz4":
            return encode_bslz4(arr)
        raise ValueError(
            f"cannot encode compression {self.compression!r}; expected 'none' or 'bslz4'"
        )

    def to_stream_data(self, typ: str = STINS) -> StreamData:
        """Header frame plus image frame, as a STINS ingester forwards them."""
        return StreamData(typ=typ, frames=[self.header_frame(), self.payload_frame()])


class Stream1End(Stream1Base):
    """End of a series."""

    htype: Literal["series_end"]


Stream1PacketType = Annotated[
    Union[Stream1Start, Stream1Data, Stream1End], Field(discriminator="htype")
]
"""Any STINS packet, told apart by ``htype``."""

Stream1PacketAdapter: TypeAdapter[Union[Stream1Start, Stream1Data, Stream1End]] = TypeAdapter(
    Stream1PacketType
)

Stream1Packet = Stream1PacketAdapter
"""Validates any Stream1 packet: ``Stream1Packet.validate_json(...)`` (the name payloads
written for earlier releases use; a TypeAdapter there too)."""
"""Validates a mapping into the matching packet (image mappings must carry ``data``)."""

__all__ = [
    "BSLZ4_HEADER",
    "STINS",
    "Stream1Base",
    "Stream1Data",
    "Stream1End",
    "Stream1Packet",
    "Stream1PacketAdapter",
    "Stream1PacketType",
    "Stream1Start",
    "default_block_size",
    "encode_bslz4",
]

"""Packets of the STINS ("stream1") protocol.

One upstream ZMQ multipart message is one packet. Its first frame is a JSON header whose ``htype``
says what it is:

* ``"header"``: start of a series (:class:`Stream1Start`), one frame;
* ``"image"``: one detector image (:class:`Stream1Data`); the second frame holds the pixels, raw
  or compressed as given by ``compression`` (``"none"``, ``"bslz4"``, ``"bszstd"`` or ``"lz4"``);
* ``"series_end"``: end of the series (:class:`Stream1End`), one frame.

Unknown extra header fields are kept on the models. ``to_stream_data`` builds the frames an
ingester would forward, for synthetic sources and tests; parsing received frames is done by
:func:`dranspose.protocols.stream1.parser.parse`.

The constructors accept every call the original dranspose 0.2.0 accepted: ``htype`` defaults to
the packet's own value, and an image may be built without ``data`` (the original's sources send
the pixels themselves as the second frame); such an image's ``to_stream_data`` gives the header
frame alone, as the original's did. :class:`Stream1` is the original's name of the base class.

The compressed layouts are those Dectris detectors send, each identical to one chunk of an HDF5
filter: an 8-byte big-endian count of uncompressed bytes, a 4-byte big-endian block size in bytes,
then the blocks, each a 4-byte big-endian compressed length and the compressed bytes.
``"bslz4"`` blocks are bitshuffled then LZ4-compressed (the HDF5 bitshuffle filter with LZ4), the
last ``count % 8`` elements stored uncompressed after them; ``"bszstd"`` the same with Zstandard;
``"lz4"`` plain LZ4 blocks (the HDF5 LZ4 filter; a block whose compressed length equals its size
is stored as is). Parsing decodes them with the vendor's ``dectris-compression``; encoding here
(:func:`encode_frame`) writes the array through the HDF5 filters of ``hdf5plugin`` into an
in-memory file and reads the chunk back. No code here imports the ``bitshuffle`` module, so a
payload may use either distribution of it (PyPI ``bitshuffle`` or conda ``bitshuffle-python``).

A parsed compressed image is decoded on first access to ``data`` (see :class:`Stream1Data`).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError

STINS = "STINS"
"""The stream type ingesters give STINS streams."""

BSLZ4_HEADER = struct.Struct(">QI")
"""The 12-byte prefix of a compressed frame: uncompressed size in bytes, block size in bytes
(the same for ``"bslz4"``, ``"bszstd"`` and ``"lz4"``)."""

COMPRESSIONS = ("bslz4", "bszstd", "lz4")
"""The compressed image layouts STINS headers may name, besides ``"none"``."""

_TARGET_BLOCK_BYTES = 8192
_BLOCK_MULTIPLE = 8
_MIN_BLOCK_ELEMENTS = 128


def default_block_size(itemsize: int) -> int:
    """The block size, in elements, of bitshuffled frames (``bslz4``, ``bszstd``) for items of
    ``itemsize`` bytes: what the HDF5 bitshuffle filter chooses when given none."""
    block = (_TARGET_BLOCK_BYTES // itemsize) // _BLOCK_MULTIPLE * _BLOCK_MULTIPLE
    return max(block, _MIN_BLOCK_ELEMENTS)


def encode_frame(array: np.ndarray, compression: str, block_size: int = 0) -> bytes:
    """Compress ``array`` (C order) into one frame of ``compression`` (``"bslz4"``,
    ``"bszstd"`` or ``"lz4"``), 12-byte header included.

    ``block_size`` is in elements; for the bitshuffled layouts it must be a multiple of 8 and 0
    picks :func:`default_block_size`, for ``"lz4"`` 0 puts the whole array in one block (up to
    the HDF5 LZ4 filter's 1 GiB). The frame is the chunk the ``hdf5plugin`` filter writes for the
    array in an in-memory HDF5 file (about 1 ms for a 512x512 uint16 image): encode once and
    reuse the bytes when sending the same image repeatedly.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(
            f"cannot encode compression {compression!r}; expected one of "
            f"{', '.join(repr(c) for c in COMPRESSIONS)}"
        )
    flat = np.ascontiguousarray(array).reshape(-1)
    itemsize = flat.dtype.itemsize
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 0:
        raise ValueError(
            f"block size must be a non-negative number of elements, got {block_size!r}"
        )
    if compression == "lz4":
        block = block_size or flat.size
    else:
        block = block_size or default_block_size(itemsize)
        if block % _BLOCK_MULTIPLE:
            raise ValueError(
                f"{compression} block size must be a multiple of 8 elements, got {block}"
            )
    if flat.size == 0:
        return BSLZ4_HEADER.pack(0, block * itemsize)
    return _hdf5_chunk(flat, compression, block)


def encode_bslz4(array: np.ndarray, block_size: int = 0) -> bytes:
    """Compress ``array`` (C order) into one bslz4 frame, 12-byte header included.

    ``block_size`` is in elements and must be a multiple of 8; 0 picks the default
    (:func:`default_block_size`). See :func:`encode_frame`.
    """
    return encode_frame(array, "bslz4", block_size)


def _hdf5_chunk(flat: np.ndarray, compression: str, block: int) -> bytes:
    """The chunk an HDF5 filter of hdf5plugin writes for the 1-d array ``flat``."""
    import h5py  # only encoders need HDF5, not parsing
    import hdf5plugin

    if compression == "lz4":
        options = hdf5plugin.LZ4(nbytes=block * flat.dtype.itemsize)
    else:
        cname: Literal["lz4", "zstd"] = "lz4" if compression == "bslz4" else "zstd"
        options = hdf5plugin.Bitshuffle(nelems=block, cname=cname)
    # Opaque items of the same size: HDF5 keeps the bytes as they are (any dtype, either byte
    # order) and the filter shuffles items of that size.
    items = flat.view(np.dtype(f"V{flat.dtype.itemsize}"))
    with h5py.File(io.BytesIO(), "w") as fh:
        dset = fh.create_dataset("frame", data=items, chunks=items.shape, **options)
        mask, chunk = dset.id.read_direct_chunk((0,))
    if mask:
        raise RuntimeError(f"the HDF5 {compression} filter did not compress the image")
    return bytes(chunk)


class PendingData:
    """A compressed image not decoded yet: calling it decodes (or raises the parser's error).

    Parsers put one in a packet instead of ``data``; the first read of ``packet.data`` calls it
    and keeps the array. It is shared, never copied, by copies of the packet.
    """

    __slots__ = ("_decode",)

    def __init__(self, decode: Callable[[], np.ndarray]) -> None:
        self._decode = decode

    def __call__(self) -> np.ndarray:
        return self._decode()

    def __copy__(self) -> PendingData:
        return self

    def __deepcopy__(self, memo: Any) -> PendingData:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("a pending image is decoded before its packet is pickled")


class _Unreadable:
    """What ``repr`` shows for an image whose frame does not decode."""

    def __init__(self, error: ParseError) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"<not decodable: {self.error}>"


class LazyData:
    """Mixin for packets whose ``data`` field a parser may leave to be decoded on first access.

    While it is pending, ``data`` is absent from the instance ``__dict__`` and ``_pending_data``
    holds a :class:`PendingData`; the first ``packet.data`` decodes, stores the array in the
    ``__dict__`` (later reads are plain attribute reads) and drops the pending decoder. A decoding
    error is raised from that read, each time it is tried. ``repr``, ``str``, pickling and
    ``model_dump`` behave as for an eagerly decoded packet (``data`` is excluded from dumps
    anyway).
    """

    __slots__ = ()

    def _pending(self) -> Optional[PendingData]:
        try:
            private = object.__getattribute__(self, "__pydantic_private__")
        except AttributeError:
            return None
        return private.get("_pending_data") if private else None

    def __getattr__(self, name: str) -> Any:
        if name == "data":
            pending = self._pending()
            if pending is not None:
                data = pending()
                self.__dict__["data"] = data
                self.__pydantic_private__["_pending_data"] = None
                return data
        # pydantic defines BaseModel.__getattr__ (next in the MRO) only outside TYPE_CHECKING
        return super().__getattr__(name)  # type: ignore[misc]

    def __getstate__(self) -> dict[Any, Any]:
        if "data" not in self.__dict__:
            _ = self.data  # a pickle carries the decoded image, never the decoder
        # BaseModel.__getstate__ (next in the MRO); the mixin alone sees object's, typed object
        state: dict[Any, Any] = super().__getstate__()  # type: ignore[assignment]
        private = state.get("__pydantic_private__")
        if private and private.get("_pending_data") is not None:
            state["__pydantic_private__"] = {**private, "_pending_data": None}
        return state

    def __repr_args__(self) -> Any:
        args = dict(super().__repr_args__())  # type: ignore[misc]
        fields = type(self).model_fields  # type: ignore[attr-defined]
        if "data" not in args and self._pending() is not None and fields["data"].repr:
            try:
                args["data"] = self.data
            except ParseError as exc:  # the parser's error, shown instead of the pixels
                args["data"] = _Unreadable(exc)
        ordered = [(name, args.pop(name)) for name in fields if name in args]
        return ordered + list(args.items())


class Stream1(BaseModel):
    """Fields every STINS packet has; unknown header fields are kept as extras.

    The original dranspose's name of the base class (payloads test ``isinstance(p, Stream1)``);
    :data:`Stream1Base` is the same class.
    """

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    msg_number: int

    def header_frame(self) -> bytes:
        """The JSON header frame of this packet (without image data)."""
        return self.model_dump_json().encode()

    def to_stream_data(self, typ: str = STINS) -> StreamData:
        """The frames an ingester would forward for this packet."""
        return StreamData(typ=typ, frames=[self.header_frame()])


Stream1Base = Stream1
"""This rewrite's earlier name of :class:`Stream1`."""


class Stream1Start(Stream1):
    """Start of a series; ``filename`` is where the detector writes (may be empty)."""

    htype: Literal["header"] = "header"
    filename: str


class Stream1Data(LazyData, Stream1):
    """One image. ``data`` has ``shape`` and dtype ``type``; it is not part of the JSON header.

    ``data`` may be left out (``None``) when building a packet whose pixels travel separately,
    as the original's sources send them: ``to_stream_data`` then gives the header frame alone and
    the sender appends the pixel frame. A parsed image always has ``data``.

    For uncompressed images a parsed ``data`` is a view of the received frame, not a copy: it is
    read-only when the frame is ``bytes``. Copy it before modifying it in place.

    A parsed compressed image (``bslz4``, ``bszstd``, ``lz4``) is decoded on the first read of
    ``data``, into a new writable array that is kept: a payload that only reads the raw frame
    (``event.streams[...].frames[1]``) pays nothing for it. The header and the block layout of
    the frame are checked when parsing; a frame whose blocks do not decode raises the
    :class:`~dranspose.protocols.common.errors.ParseError` from that first read.
    """

    htype: Literal["image"] = "image"
    frame: int
    shape: list[int]
    type: str
    compression: Optional[str] = None
    data: Optional[np.ndarray] = Field(default=None, exclude=True)
    _pending_data: Optional[PendingData] = PrivateAttr(default=None)

    @classmethod
    def from_array(
        cls,
        array: Any,
        *,
        msg_number: int,
        frame: int,
        compression: Optional[str] = "none",
        **extra: Any,
    ) -> Stream1Data:
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
        if self.data is None:
            raise ValueError(
                f"image msg_number={self.msg_number} frame={self.frame} has no data to encode; "
                f"pass data= or send the pixel frame yourself after header_frame()"
            )
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
        if self.compression in COMPRESSIONS:
            return encode_frame(arr, self.compression)
        raise ValueError(
            f"cannot encode compression {self.compression!r}; expected 'none', 'bslz4', "
            f"'bszstd' or 'lz4'"
        )

    def to_stream_data(self, typ: str = STINS) -> StreamData:
        """Header frame plus image frame, as a STINS ingester forwards them; the header frame
        alone when the packet has no ``data`` (as the original dranspose did)."""
        if self.data is None:
            return StreamData(typ=typ, frames=[self.header_frame()])
        return StreamData(typ=typ, frames=[self.header_frame(), self.payload_frame()])


class Stream1End(Stream1):
    """End of a series."""

    htype: Literal["series_end"] = "series_end"


Stream1PacketType = Annotated[
    Union[Stream1Start, Stream1Data, Stream1End], Field(discriminator="htype")
]
"""Any STINS packet, told apart by ``htype``."""

Stream1PacketAdapter: TypeAdapter[Union[Stream1Start, Stream1Data, Stream1End]] = TypeAdapter(
    Stream1PacketType
)

Stream1Packet = Stream1PacketAdapter
"""Validates any Stream1 packet: ``Stream1Packet.validate_json(...)`` (the name payloads
written for earlier releases use; a TypeAdapter there too). An image validated this way has no
``data`` unless the mapping carries it; :func:`dranspose.protocols.stream1.parser.parse` reads
it from the second frame."""

__all__ = [
    "BSLZ4_HEADER",
    "COMPRESSIONS",
    "STINS",
    "LazyData",
    "PendingData",
    "Stream1",
    "Stream1Base",
    "Stream1Data",
    "Stream1End",
    "Stream1Packet",
    "Stream1PacketAdapter",
    "Stream1PacketType",
    "Stream1Start",
    "default_block_size",
    "encode_bslz4",
    "encode_frame",
]

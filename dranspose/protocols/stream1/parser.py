"""Parser for STINS ("stream1") streams: :func:`parse` turns a ``StreamData`` into a packet.

This runs once per event in every worker, so it avoids copies: the header is decoded with
pydantic-core's JSON parser and validated by the packet model in one pass, and an uncompressed
image is a numpy view of the received frame.

Compressed images (``bslz4``, ``bszstd``, ``lz4``; layouts in :mod:`dranspose.protocols.stream1.packets`)
are checked when parsing: the 12-byte header against the image header's shape and type, the
block size, and the chain of compressed blocks walked to the end of the frame, so a truncated or
corrupt frame is a :class:`ParseError` from :func:`parse` instead of a read past the end of the
buffer. Decoding waits for the first read of ``packet.data`` and is done by the vendor's
``dectris-compression`` (bounds-checked decoders); a block that does not decode raises a
:class:`ParseError` naming it from that read. Nothing here imports the ``bitshuffle`` module.
"""

from __future__ import annotations

import math
import struct
from typing import Any, Optional, Union

import dectris.compression
import numpy as np

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.frames import Buffer, array_dtype, frame_buffer, size_text
from dranspose.protocols.common.json_header import load_json_object, packet_class, validate
from dranspose.protocols.common.stream_argument import stream_argument
from dranspose.protocols.stream1.packets import (
    BSLZ4_HEADER,
    COMPRESSIONS,
    PendingData,
    Stream1Data,
    Stream1End,
    Stream1Start,
    default_block_size,
)

__all__ = ["ParseError", "parse"]

_Packet = Union[Stream1Start, Stream1Data, Stream1End]
_PACKETS: dict[str, type[_Packet]] = {
    "header": Stream1Start,
    "image": Stream1Data,
    "series_end": Stream1End,
}

# Stands in for ``data`` while the image header is validated; replaced before returning.
_NO_DATA = np.empty(0, dtype=np.uint8)
_NO_DATA.flags.writeable = False

_BLOCK_PREFIX = struct.Struct(">I")
_PREFIX = BSLZ4_HEADER.size
_DATA_FRAME = "frame 1 (image data)"
_EXPECTED_COMPRESSIONS = (
    "'none', " + ", ".join(repr(c) for c in COMPRESSIONS[:-1]) + (f" or {COMPRESSIONS[-1]!r}")
)
# Bitshuffled layouts: blocks of a multiple of 8 elements, the last count % 8 stored as they are.
_BITSHUFFLED = frozenset({"bslz4", "bszstd"})
# LZ4 cannot expand input by more than a factor 255; anything claiming more is corrupt.
_LZ4_MAX_RATIO = 255
# dectris-compression (like the HDF5 filters) keeps block sizes in a signed 32-bit int.
_MAX_BLOCK_BYTES = 2**31 - 1


def parse(
    data: Optional[StreamData] = None, *, stream_data: Optional[StreamData] = None
) -> _Packet:
    """Decode one STINS message into :class:`Stream1Start`, :class:`Stream1Data` or
    :class:`Stream1End`.

    The stream is passed as ``data`` (the original dranspose's name: ``parse(stream)`` or
    ``parse(data=stream)``) or as ``stream_data``. Raises :class:`ParseError` naming the stream
    type, the frame and what was expected when the frames are not a valid STINS packet. Any
    ``typ`` is accepted: ingesters label streams differently, only the frames matter.
    """
    stream: StreamData = stream_argument(data, stream_data, "stream1.parse")
    typ = stream.typ
    frames = stream.frames
    if not frames:
        raise ParseError(f"{typ} stream: no frames; expected a JSON header in frame 0")
    at = f"{typ} frame 0 (header)"
    header = load_json_object(frames[0], at, "a JSON object with an 'htype' field")
    cls = packet_class(header, "htype", _PACKETS, at)
    invalid = f"{at}: invalid {header['htype']!r} header"
    if cls is not Stream1Data:
        return validate(cls, header, invalid, whole="header")

    header["data"] = _NO_DATA
    packet = validate(Stream1Data, header, invalid, whole="header")
    where = _where(typ, packet)
    shape = packet.shape
    dtype = array_dtype(where, shape, packet.type, "'uint16', 'uint32' or 'float32'")
    if len(frames) < 2:
        raise ParseError(f"{where}: {_DATA_FRAME} is missing; expected {size_text(shape, dtype)}")
    buf = frame_buffer(frames[1], where, _DATA_FRAME)
    compression = packet.compression
    if compression is None or compression == "none":
        if len(buf) != math.prod(shape) * dtype.itemsize:
            raise ParseError(
                f"{where}: {_DATA_FRAME} has {len(buf)} bytes, expected {size_text(shape, dtype)}"
            )
        packet.__dict__["data"] = np.frombuffer(buf, dtype=dtype).reshape(shape)
    elif compression in COMPRESSIONS:
        set_data(packet, check_compressed(where, _DATA_FRAME, compression, buf, shape, dtype))
    else:
        raise ParseError(
            f"{where}: unknown compression {compression!r}; expected {_EXPECTED_COMPRESSIONS}"
        )
    return packet


def set_data(packet: Any, data: Union[np.ndarray, PendingData]) -> None:
    """Give a packet validated with a placeholder ``data`` its array, or the decoder that makes
    it on first access (see :class:`dranspose.protocols.stream1.packets.LazyData`)."""
    if isinstance(data, PendingData):
        packet.__dict__.pop("data", None)
        packet.__pydantic_private__["_pending_data"] = data
    else:
        packet.__dict__["data"] = data


def _where(typ: str, packet: Stream1Data) -> str:
    return f"{typ} image msg_number={packet.msg_number} frame={packet.frame}"


def check_compressed(
    where: str,
    label: str,
    compression: str,
    buf: Buffer,
    shape: list[int],
    dtype: np.dtype,
) -> Union[np.ndarray, PendingData]:
    """Check a ``compression`` frame (``"bslz4"``, ``"bszstd"`` or ``"lz4"``) of an image of
    ``shape`` and ``dtype``; the decoder for it, to be called on first access.

    Raises :class:`ParseError` starting with ``where`` and naming the frame as ``label`` when the
    header does not match the image or the blocks do not fill the frame exactly. An empty image
    needs no decoding and is returned as an array.
    """
    size = len(buf)
    if size < _PREFIX:
        raise ParseError(
            f"{where}: {compression} {label} has {size} bytes, shorter than the "
            f"{_PREFIX}-byte {compression} header"
        )
    nbytes, block_bytes = BSLZ4_HEADER.unpack_from(buf, 0)
    itemsize = dtype.itemsize
    count = math.prod(shape)
    expected = count * itemsize
    if nbytes != expected:
        raise ParseError(
            f"{where}: {compression} header announces {nbytes} uncompressed bytes, expected "
            f"{size_text(shape, dtype)}"
        )
    if count == 0:
        if size != _PREFIX:
            raise ParseError(
                f"{where}: {compression} frame of an empty image has {size} bytes, expected "
                f"only the {_PREFIX}-byte header"
            )
        return np.empty(shape, dtype=dtype)
    shuffled = compression in _BITSHUFFLED
    default_block = block_bytes == 0
    if default_block:
        if not shuffled:
            raise ParseError(
                f"{where}: {compression} header gives block size 0 for {expected} bytes; "
                f"expected the size in bytes of the blocks"
            )
        block_bytes = default_block_size(itemsize) * itemsize
    elif shuffled:
        if block_bytes % itemsize:
            raise ParseError(
                f"{where}: {compression} block size {block_bytes} bytes is not a multiple of "
                f"the {itemsize}-byte {dtype.name} item size"
            )
        if (block_bytes // itemsize) % 8:
            raise ParseError(
                f"{where}: {compression} block size {block_bytes // itemsize} elements "
                f"({block_bytes} bytes) is not a multiple of 8 elements"
            )
    if block_bytes > _MAX_BLOCK_BYTES:
        raise ParseError(
            f"{where}: {compression} block size {block_bytes} bytes exceeds the limit of "
            f"{_MAX_BLOCK_BYTES} bytes"
        )
    body = size - _PREFIX
    if compression != "bszstd" and expected > _LZ4_MAX_RATIO * body:
        raise ParseError(
            f"{where}: {compression} data of {body} compressed bytes cannot hold {expected} "
            f"uncompressed bytes (LZ4 expands at most {_LZ4_MAX_RATIO}x); the frame is "
            f"truncated or corrupt"
        )
    layout = _Layout(compression, itemsize, expected, block_bytes, default_block)
    _check_blocks(where, label, buf, layout)

    def decode() -> np.ndarray:
        return _decode(where, label, buf, shape, dtype, layout)

    return PendingData(decode)


class _Layout:
    """How a compressed frame is cut into blocks."""

    __slots__ = ("block_bytes", "compression", "default_block", "expected", "itemsize", "tail")

    def __init__(
        self, compression: str, itemsize: int, expected: int, block_bytes: int, default_block: bool
    ) -> None:
        self.compression = compression
        self.itemsize = itemsize
        self.expected = expected
        self.block_bytes = block_bytes
        self.default_block = default_block
        # bitshuffle leaves the last count % 8 elements uncompressed after the blocks
        shuffled = compression in _BITSHUFFLED
        self.tail = expected % (8 * itemsize) if shuffled else 0

    def block_sizes(self) -> list[int]:
        """The uncompressed bytes of each block, in order."""
        full, rest = divmod(self.expected - self.tail, self.block_bytes)
        return [self.block_bytes] * full + ([rest] if rest else [])

    def block_text(self) -> str:
        if self.compression in _BITSHUFFLED:
            return f"blocks of {self.block_bytes // self.itemsize} elements"
        return f"blocks of {self.block_bytes} bytes"


def _decompress(src: Buffer, layout: _Layout) -> bytes:
    result: bytes = dectris.compression.decompress(
        src, layout.compression, elem_size=layout.itemsize
    )
    return result


def _decode(
    where: str,
    label: str,
    buf: Buffer,
    shape: list[int],
    dtype: np.dtype,
    layout: _Layout,
) -> np.ndarray:
    src: Buffer = buf
    if layout.default_block:
        # a header block size of 0 means the default; dectris-compression wants it written out
        src = BSLZ4_HEADER.pack(layout.expected, layout.block_bytes) + bytes(buf[_PREFIX:])
    compression = layout.compression
    try:
        raw = _decompress(src, layout)
    except (RuntimeError, ValueError) as exc:
        if "unknown algorithm" in str(exc):
            raise ParseError(
                f"{where}: {compression} {label} cannot be decoded: the installed "
                f"dectris-compression does not know {compression!r} ({exc}); version 0.4 or "
                f"later does"
            ) from exc
        failing = _failing_block(buf, layout)
        raise ParseError(
            f"{where}: {compression} {label} is corrupt: {failing}dectris-compression failed "
            f"({exc}) decoding {size_text(shape, dtype)} in {layout.block_text()}"
        ) from exc
    if len(raw) != layout.expected:
        raise ParseError(
            f"{where}: {compression} {label} decoded to {len(raw)} bytes, expected "
            f"{size_text(shape, dtype)}"
        )
    # a writable array of its own, as payloads modifying decoded images in place expect
    return np.frombuffer(bytearray(raw), dtype=dtype).reshape(shape)


def _failing_block(buf: Buffer, layout: _Layout) -> str:
    """Decode the blocks one by one to say which one is corrupt (only on the error path)."""
    sizes = layout.block_sizes()
    pos = _PREFIX
    for index, nbytes in enumerate(sizes):
        (length,) = _BLOCK_PREFIX.unpack_from(buf, pos)
        one = BSLZ4_HEADER.pack(nbytes, layout.block_bytes) + bytes(buf[pos : pos + 4 + length])
        try:
            _decompress(one, layout)
        except (RuntimeError, ValueError):
            return (
                f"block {index} of {len(sizes)} ({length} compressed bytes at byte {pos}) does "
                f"not decode to {nbytes} bytes; "
            )
        pos += 4 + length
    return ""


def _check_blocks(where: str, label: str, buf: Buffer, layout: _Layout) -> None:
    """Walk the chain of compressed blocks: each must lie inside the frame, and together with
    the uncompressed tail (the last ``count % 8`` elements of bitshuffled data) they must fill
    it exactly."""
    blocks = len(layout.block_sizes())
    compression = layout.compression
    end = len(buf) - layout.tail
    pos = _PREFIX
    unpack = _BLOCK_PREFIX.unpack_from
    for index in range(blocks):
        if pos + 4 > end:
            raise ParseError(
                f"{where}: {compression} {label} is truncated: block {index} of {blocks} "
                f"starts at byte {pos} but the blocks end at byte {end}"
            )
        (length,) = unpack(buf, pos)
        pos += 4 + length
        if pos > end:
            raise ParseError(
                f"{where}: {compression} {label} is truncated or corrupt: block {index} of "
                f"{blocks} declares {length} compressed bytes, running to byte {pos} past the "
                f"end of the blocks at byte {end}"
            )
    if pos != end:
        tail = layout.tail
        raise ParseError(
            f"{where}: {compression} {label} has {len(buf)} bytes, but its header, {blocks} "
            f"compressed blocks and {tail} uncompressed tail bytes take {pos + tail}; expected "
            f"them to fill the frame exactly"
        )

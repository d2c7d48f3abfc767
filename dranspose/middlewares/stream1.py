"""Parser for STINS ("stream1") streams: :func:`parse` turns a ``StreamData`` into a packet.

This runs once per event in every worker, so it avoids copies: the header is decoded with
pydantic-core's JSON parser and validated by the packet model in one pass, and an uncompressed
image is a numpy view of the received frame. ``bslz4`` images are decompressed with ``bitshuffle``
after their block layout has been checked, so a truncated or corrupt frame becomes a
:class:`ParseError` instead of a read past the end of the buffer.
"""

from __future__ import annotations

import functools
import math
import struct
from typing import Any, Optional, Union

import bitshuffle
import numpy as np
import zmq
from pydantic import ValidationError

from dranspose.data.stream1 import (
    BSLZ4_HEADER,
    Stream1Base,
    Stream1Data,
    Stream1End,
    Stream1Start,
    default_block_size,
)
from dranspose.event import StreamData
from dranspose.middlewares._json import load_json_object, summarise
from dranspose.middlewares.errors import ParseError

__all__ = ["ParseError", "parse"]

_PACKETS: dict[str, type[Stream1Base]] = {
    "header": Stream1Start,
    "image": Stream1Data,
    "series_end": Stream1End,
}
_KNOWN_HTYPES = ", ".join(repr(h) for h in _PACKETS)

# Stands in for ``data`` while the image header is validated; replaced before returning.
_NO_DATA = np.empty(0, dtype=np.uint8)
_NO_DATA.flags.writeable = False

_NUMERIC_KINDS = frozenset("biufc")
_BLOCK_PREFIX = struct.Struct(">I")
_BSLZ4_PREFIX = BSLZ4_HEADER.size
# LZ4 cannot expand input by more than a factor 255; anything claiming more is corrupt.
_LZ4_MAX_RATIO = 255
# bitshuffle counts elements in a C int.
_BITSHUFFLE_MAX_ELEMENTS = 2**31 - 1
# Zero bytes after the compressed blocks: bitshuffle decodes with LZ4_decompress_fast, which
# trusts the data and may read past a corrupt block before noticing.
_PAD_SLACK = 64


def parse(stream_data: StreamData) -> Union[Stream1Start, Stream1Data, Stream1End]:
    """Decode one STINS message into :class:`Stream1Start`, :class:`Stream1Data` or
    :class:`Stream1End`.

    Raises :class:`ParseError` naming the stream type, the frame and what was expected when the
    frames are not a valid STINS packet. Any ``typ`` is accepted: ingesters label streams
    differently, only the frames matter.
    """
    typ = stream_data.typ
    frames = stream_data.frames
    if not frames:
        raise ParseError(f"{typ} stream: no frames; expected a JSON header in frame 0")
    header = _load_header(typ, frames[0])
    htype = header.get("htype")
    cls = _PACKETS.get(htype) if type(htype) is str else None
    if cls is None:
        got = f"htype {htype!r}" if "htype" in header else "no 'htype' field"
        raise ParseError(
            f"{typ} frame 0 (header): {got}; expected htype to be one of {_KNOWN_HTYPES}"
        )
    if cls is not Stream1Data:
        return _validate(typ, cls, htype, header)  # type: ignore[no-any-return]

    header["data"] = _NO_DATA
    packet: Stream1Data = _validate(typ, cls, htype, header)
    shape = packet.shape
    if shape and min(shape) < 0:
        raise ParseError(
            f"{_where(typ, packet)}: header shape {shape} has a negative dimension"
        )
    dtype = _lookup_dtype(packet.type)
    if dtype is None:
        raise ParseError(
            f"{_where(typ, packet)}: header type {packet.type!r} is not a numeric numpy dtype; "
            f"expected a name such as 'uint16', 'uint32' or 'float32'"
        )
    if len(frames) < 2:
        raise ParseError(
            f"{_where(typ, packet)}: frame 1 (image data) is missing; expected "
            f"{_describe(shape, dtype)}"
        )
    frame = frames[1]
    buf = frame if type(frame) is bytes else _buffer(typ, packet, frame)
    compression = packet.compression
    if compression is None or compression == "none":
        if len(buf) != math.prod(shape) * dtype.itemsize:
            raise ParseError(
                f"{_where(typ, packet)}: frame 1 (image data) has {len(buf)} bytes, expected "
                f"{_describe(shape, dtype)}"
            )
        data = np.frombuffer(buf, dtype=dtype).reshape(shape)
    elif compression == "bslz4":
        data = _decode_bslz4(_where(typ, packet), buf, shape, dtype)
    else:
        raise ParseError(
            f"{_where(typ, packet)}: unknown compression {compression!r}; "
            f"expected 'none' or 'bslz4'"
        )
    packet.__dict__["data"] = data
    return packet


def _where(typ: str, packet: Stream1Data) -> str:
    return f"{typ} image msg_number={packet.msg_number} frame={packet.frame}"


def _load_header(typ: str, frame: Any) -> dict[str, Any]:
    return load_json_object(frame, f"{typ} frame 0 (header)", "a JSON object with an 'htype' field")


def _summarise(exc: ValidationError) -> str:
    return summarise(exc, whole="header")


def _validate(typ: str, cls: type[Stream1Base], htype: str, header: dict[str, Any]) -> Any:
    try:
        return cls.__pydantic_validator__.validate_python(header)
    except ValidationError as exc:
        raise ParseError(
            f"{typ} frame 0 (header): invalid {htype!r} header: {_summarise(exc)}"
        ) from exc


@functools.lru_cache(maxsize=128)
def _lookup_dtype(name: str) -> Optional[np.dtype]:
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError, SyntaxError):
        return None
    if dtype.kind not in _NUMERIC_KINDS or dtype.itemsize == 0:
        return None
    return dtype


def _describe(shape: list[int], dtype: np.dtype) -> str:
    return (
        f"{math.prod(shape) * dtype.itemsize} bytes for shape {shape} of {dtype.name} "
        f"({dtype.itemsize} bytes each)"
    )


def _buffer(typ: str, packet: Stream1Data, frame: Any) -> Union[bytes, memoryview]:
    """The frame's bytes without copying: ``bytes`` as is, anything else as a flat memoryview."""
    if isinstance(frame, bytes):
        return frame
    try:
        view = frame.buffer if isinstance(frame, zmq.Frame) else memoryview(frame)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
    except TypeError as exc:
        raise ParseError(
            f"{_where(typ, packet)}: frame 1 (image data) is a {type(frame).__name__}, "
            f"expected bytes"
        ) from exc
    return view


def _decode_bslz4(
    where: str, buf: Union[bytes, memoryview], shape: list[int], dtype: np.dtype
) -> np.ndarray:
    size = len(buf)
    if size < _BSLZ4_PREFIX:
        raise ParseError(
            f"{where}: bslz4 frame 1 (image data) has {size} bytes, shorter than the "
            f"{_BSLZ4_PREFIX}-byte bslz4 header"
        )
    nbytes, block_bytes = BSLZ4_HEADER.unpack_from(buf, 0)
    itemsize = dtype.itemsize
    count = math.prod(shape)
    expected = count * itemsize
    if nbytes != expected:
        raise ParseError(
            f"{where}: bslz4 header announces {nbytes} uncompressed bytes, expected "
            f"{_describe(shape, dtype)}"
        )
    if count == 0:
        if size != _BSLZ4_PREFIX:
            raise ParseError(
                f"{where}: bslz4 frame of an empty image has {size} bytes, expected only "
                f"the {_BSLZ4_PREFIX}-byte header"
            )
        return np.empty(shape, dtype=dtype)
    if block_bytes == 0:
        block = default_block_size(itemsize)
    else:
        if block_bytes % itemsize:
            raise ParseError(
                f"{where}: bslz4 block size {block_bytes} bytes is not a multiple of the "
                f"{itemsize}-byte {dtype.name} item size"
            )
        block = block_bytes // itemsize
        if block % 8:
            raise ParseError(
                f"{where}: bslz4 block size {block} elements ({block_bytes} bytes) is not a "
                f"multiple of 8 elements"
            )
    if count > _BITSHUFFLE_MAX_ELEMENTS:
        raise ParseError(
            f"{where}: bslz4 image of {count} elements exceeds bitshuffle's limit of "
            f"{_BITSHUFFLE_MAX_ELEMENTS}"
        )
    body = size - _BSLZ4_PREFIX
    if expected > _LZ4_MAX_RATIO * body:
        raise ParseError(
            f"{where}: bslz4 data of {body} compressed bytes cannot hold {expected} "
            f"uncompressed bytes (LZ4 expands at most {_LZ4_MAX_RATIO}x); the frame is "
            f"truncated or corrupt"
        )
    _check_blocks(where, buf, count, itemsize, block)

    padded = np.zeros(body + min(block * itemsize, expected) + _PAD_SLACK, dtype=np.uint8)
    padded[:body] = np.frombuffer(buf, dtype=np.uint8, offset=_BSLZ4_PREFIX)
    out_shape = tuple(shape) or (1,)
    try:
        data = bitshuffle.decompress_lz4(padded[:body], out_shape, dtype, block)
    except (RuntimeError, ValueError) as exc:
        args = exc.args
        detail = f"error code {args[1]}" if len(args) > 1 and type(args[1]) is int else str(exc)
        raise ParseError(
            f"{where}: bslz4 frame 1 (image data) is corrupt: bitshuffle failed ({detail}) "
            f"decoding {_describe(shape, dtype)} in blocks of {block} elements"
        ) from exc
    return data if shape else data.reshape(())


def _check_blocks(
    where: str, buf: Union[bytes, memoryview], count: int, itemsize: int, block: int
) -> None:
    """Walk the chain of compressed blocks: each must lie inside the frame, and together with
    the uncompressed tail (the last ``count % 8`` elements) they must fill it exactly."""
    full, rest = divmod(count, block)
    blocks = full + (1 if rest >= 8 else 0)
    end = len(buf) - (count % 8) * itemsize
    pos = _BSLZ4_PREFIX
    unpack = _BLOCK_PREFIX.unpack_from
    for index in range(blocks):
        if pos + 4 > end:
            raise ParseError(
                f"{where}: bslz4 frame 1 (image data) is truncated: block {index} of {blocks} "
                f"starts at byte {pos} but the blocks end at byte {end}"
            )
        (length,) = unpack(buf, pos)
        pos += 4 + length
        if pos > end:
            raise ParseError(
                f"{where}: bslz4 frame 1 (image data) is truncated or corrupt: block {index} "
                f"of {blocks} declares {length} compressed bytes, running to byte {pos} past "
                f"the end of the blocks at byte {end}"
            )
    if pos != end:
        tail = len(buf) - end
        raise ParseError(
            f"{where}: bslz4 frame 1 (image data) has {len(buf)} bytes, but its header, "
            f"{blocks} compressed blocks and {tail} uncompressed tail bytes take "
            f"{pos + tail}; expected them to fill the frame exactly"
        )

"""Parser for Dectris EIGER legacy (stream v1) messages: :func:`parse` turns a ``StreamData``
into a packet with its binary frames decoded.

A worker receives every image, so the image path is short: three small JSON frames are decoded
with pydantic-core, the header is validated once and raw data becomes a numpy view of the frame.
Compressed data is checked when parsing and decoded on the first read of ``image.data``: for
bitshuffle/LZ4 the header and block layout are checked by the same helper the STINS parser uses
(:mod:`dranspose.protocols.stream1.parser`), so a truncated or corrupt frame is a :class:`ParseError`,
not a read past the buffer, and the vendor's ``dectris-compression`` decodes it (the ``bitshuffle``
module is not used). The descriptor's ``size`` is compared with the data frame first, which
catches the usual damage (a cut frame) with a message that says so.

The image's ``data`` is an :class:`~dranspose.protocols.eiger_legacy.image.EigerImageArray`
holding the descriptor (with its ``htype``) and the data frame, so the original dranspose's
``data["buffer"]``, ``data["shape"]``, ... work on it; ``config`` keeps its ``htype`` as the
original's did.

Plain ``lz4<`` data needs the optional ``lz4`` package; without it reading such an image's
``data`` raises a :class:`ParseError` saying so.

The packet models let ``series``, ``header_detail`` and the image descriptor's fields default
(the original dranspose's models did not know them), but a message on the wire always carries
them, so the parser requires them and names the one that is missing or null.
"""

from __future__ import annotations

import math
from typing import Any, Optional, TypeVar, Union, cast

import numpy as np
from pydantic import ValidationError
from pydantic_core import from_json

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.frames import (
    Buffer,
    Frame,
    array_dtype,
    frame_buffer,
    frame_bytes,
    numeric_dtype,
)
from dranspose.protocols.common.json_header import load_json_object, short, summarise
from dranspose.protocols.common.stream_argument import stream_argument
from dranspose.protocols.eiger_legacy.image import EigerImageArray
from dranspose.protocols.eiger_legacy.packets import (
    HEADER_ARRAYS,
    HEADER_DETAIL_FRAMES,
    EigerLegacy,
    EigerLegacyEnd,
    EigerLegacyHeader,
    EigerLegacyImage,
    numpy_shape,
    parse_encoding,
)
from dranspose.protocols.stream1.packets import PendingData
from dranspose.protocols.stream1.parser import check_compressed, set_data

__all__ = ["ParseError", "parse"]

_HTYPES = "'dheader-1.0', 'dimage-1.0' or 'dseries_end-1.0'"
_IMAGE_FRAMES = 4  # dimage-1.0, dimage_d-1.0, data, dconfig-1.0; an appendix makes 5
_DESCRIPTOR_KEYS = ("shape", "type", "encoding")
_DATA_FRAME = "frame 2 (image data)"
# LZ4 cannot expand input by more than a factor 255; anything claiming more is corrupt.
_LZ4_MAX_RATIO = 255

# Stands in for ``data`` while the image header is validated; replaced before returning.
_NO_DATA = np.empty(0, dtype=np.uint8)
_NO_DATA.flags.writeable = False

_Model = TypeVar("_Model", bound=EigerLegacy)


def parse(
    data: Optional[StreamData] = None, *, stream_data: Optional[StreamData] = None
) -> Union[EigerLegacyHeader, EigerLegacyImage, EigerLegacyEnd]:
    """Decode one EIGER legacy message into :class:`EigerLegacyHeader`,
    :class:`EigerLegacyImage` or :class:`EigerLegacyEnd`.

    The stream is passed as ``data`` (the original dranspose's name: ``parse(stream)`` or
    ``parse(data=stream)``) or as ``stream_data``.
    Raises :class:`ParseError` naming the stream type, the frame and what was expected when the
    frames are not a valid message: wrong number of frames for the ``header_detail`` or image,
    a descriptor of the wrong ``htype``, an unknown encoding, a data frame whose length does not
    match its descriptor, or compressed data that does not decode. Any ``typ`` is accepted.
    """
    stream: StreamData = stream_argument(data, stream_data, "eiger_legacy.parse")
    typ = stream.typ
    frames = stream.frames
    if not frames:
        raise ParseError(f"{typ} message has no frames; expected a JSON object in frame 0")
    first = _json_object(typ, frames[0], 0, "first frame")
    htype = first.get("htype")
    if htype == "dimage-1.0":
        return _image(typ, frames, first)
    if htype == "dheader-1.0":
        return _header(typ, frames, first)
    if htype == "dseries_end-1.0":
        end = _validate(typ, "frame 0 (dseries_end-1.0)", EigerLegacyEnd, first)
        if len(frames) != 1:
            raise ParseError(
                f"{typ} series end series={end.series}: {len(frames)} frames, expected 1"
            )
        return end
    got = f"htype {htype!r}" if "htype" in first else "no 'htype' field"
    raise ParseError(f"{typ} frame 0: {got}; expected htype to be one of {_HTYPES}")


# --- images --------------------------------------------------------------------------------------


def _image(typ: str, frames: Any, first: dict[str, Any]) -> EigerLegacyImage:
    count = len(frames)
    if count not in (_IMAGE_FRAMES, _IMAGE_FRAMES + 1):
        raise ParseError(
            f"{typ} image frame={short(first.get('frame'))}: {count} frames, expected "
            f"{_IMAGE_FRAMES} (dimage-1.0, dimage_d-1.0, data, dconfig-1.0) or "
            f"{_IMAGE_FRAMES + 1} with an appendix"
        )
    descriptor = _json_object(typ, frames[1], 1, "dimage_d-1.0 descriptor")
    _expect_htype(typ, descriptor, 1, "dimage_d-1.0")
    missing = [key for key in _DESCRIPTOR_KEYS if key not in descriptor]
    if missing:
        raise ParseError(
            f"{typ} frame 1 (dimage_d-1.0 descriptor): {', '.join(missing)} missing; expected "
            f"shape, type and encoding"
        )
    config = _json_object(typ, frames[3], 3, "dconfig-1.0")
    _expect_htype(typ, config, 3, "dconfig-1.0")

    fields = dict(first)
    for key, value in descriptor.items():
        if key != "htype":
            fields[key] = value
    fields["config"] = config
    fields["data"] = _NO_DATA
    image: EigerLegacyImage = _validate(
        typ, "frames 0-1 (dimage-1.0 and dimage_d-1.0)", EigerLegacyImage, fields
    )
    where = f"{typ} image series={image.series} frame={image.frame}"
    set_data(image, _decode_image(where, image, descriptor, frames[2]))
    if count > _IMAGE_FRAMES:
        image.__dict__["appendix"] = _appendix(frames[_IMAGE_FRAMES])
    return image


def _decode_image(
    where: str, image: EigerLegacyImage, descriptor: dict[str, Any], frame: Any
) -> Union[np.ndarray, PendingData]:
    """The image's :class:`EigerImageArray`, or the decoder making it on first access."""
    decoded, buf = _decode_pixels(where, image, frame)
    if isinstance(decoded, PendingData):
        pending = decoded
        return PendingData(lambda: EigerImageArray.described(pending(), descriptor, buf))
    return EigerImageArray.described(decoded, descriptor, buf)


def _decode_pixels(
    where: str, image: EigerLegacyImage, frame: Any
) -> tuple[Union[np.ndarray, PendingData], Buffer]:
    # _validate checked that the descriptor gave them all
    shape, encoding_name = cast(list[int], image.shape), cast(str, image.encoding)
    base = array_dtype(where, shape, cast(str, image.type), "'uint16' or 'uint32'", "descriptor")
    encoding = parse_encoding(encoding_name)
    if encoding is None:
        raise ParseError(
            f"{where}: unknown encoding {image.encoding!r}; expected '<' or '>' (raw), 'lz4<' "
            f"or a bitshuffle/LZ4 encoding such as 'bs32-lz4<'"
        )
    dtype = base.newbyteorder(encoding.byteorder)
    buf = frame_buffer(frame, f"{where} {_DATA_FRAME}")
    if image.size is not None and image.size != len(buf):
        problem = "truncated" if len(buf) < image.size else "longer than announced"
        raise ParseError(
            f"{where}: {_DATA_FRAME} has {len(buf)} bytes but the dimage_d-1.0 descriptor "
            f"gives size {image.size}; the frame is {problem}"
        )
    array_shape = numpy_shape(shape)
    if encoding.bitshuffle_bits is not None:
        if encoding.bitshuffle_bits != 8 * dtype.itemsize:
            raise ParseError(
                f"{where}: encoding {image.encoding!r} shuffles {encoding.bitshuffle_bits}-bit "
                f"elements but type {image.type!r} has {8 * dtype.itemsize}-bit pixels"
            )
        checked = check_compressed(where, _DATA_FRAME, "bslz4", buf, list(array_shape), dtype)
        return checked, buf
    expected = math.prod(array_shape) * dtype.itemsize
    if encoding.lz4:
        if expected > _LZ4_MAX_RATIO * len(buf):
            raise ParseError(
                f"{where}: {_DATA_FRAME} of {len(buf)} bytes cannot be an LZ4 block of "
                f"{expected} bytes (LZ4 expands at most {_LZ4_MAX_RATIO}x); the frame is "
                f"truncated or corrupt"
            )

        def decode() -> np.ndarray:
            return _decode_lz4(where, encoding_name, buf, array_shape, dtype, expected)

        return PendingData(decode), buf
    if len(buf) != expected:
        raise ParseError(
            f"{where}: {_DATA_FRAME} has {len(buf)} bytes, expected {expected} for shape "
            f"{shape} of {image.type} ({dtype.itemsize} bytes each)"
        )
    return np.frombuffer(buf, dtype=dtype).reshape(array_shape), buf


def _decode_lz4(
    where: str, encoding: str, buf: Buffer, shape: tuple[int, ...], dtype: np.dtype, expected: int
) -> np.ndarray:
    try:
        import lz4.block  # optional dependency: only plain-LZ4 streams need it
    except ImportError as exc:
        raise ParseError(
            f"{where}: encoding {encoding!r} (plain LZ4) needs the optional 'lz4' package, "
            f"which is not installed"
        ) from exc
    try:
        raw = lz4.block.decompress(buf, uncompressed_size=expected, return_bytearray=True)
    except Exception as exc:  # lz4 raises its own LZ4BlockError, ValueError or MemoryError
        raise ParseError(
            f"{where}: {_DATA_FRAME} is not a valid LZ4 block of {expected} bytes ({exc})"
        ) from exc
    if len(raw) != expected:
        raise ParseError(
            f"{where}: {_DATA_FRAME} decompresses to {len(raw)} bytes, expected {expected}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)  # a bytearray: writable


# --- series header -------------------------------------------------------------------------------


def _header(typ: str, frames: Any, first: dict[str, Any]) -> EigerLegacyHeader:
    header: EigerLegacyHeader = _validate(typ, "frame 0 (dheader-1.0)", EigerLegacyHeader, first)
    detail = cast(str, header.header_detail)  # _validate checked it is there
    expected = HEADER_DETAIL_FRAMES[detail]
    count = len(frames)
    where = f"{typ} header series={header.series}"
    if count not in (expected, expected + 1):
        raise ParseError(
            f"{where}: {count} frames, expected {expected} for header_detail {detail!r} "
            f"({expected + 1} with an appendix)"
        )
    if detail != "none":
        header.__dict__["info"] = _json_object(typ, frames[1], 1, "detector configuration")
    if detail == "all":
        for number, (name, htype) in enumerate(HEADER_ARRAYS):
            index = 2 + 2 * number
            header.__dict__[name] = _header_array(typ, where, frames, index, htype)
    if count > expected:
        header.__dict__["appendix"] = _appendix(frames[expected])
    return header


def _header_array(typ: str, where: str, frames: Any, index: int, htype: str) -> np.ndarray:
    descriptor = _json_object(typ, frames[index], index, f"{htype} descriptor")
    _expect_htype(typ, descriptor, index, htype)
    shape = descriptor.get("shape")
    if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
        raise ParseError(
            f"{where} frame {index} ({htype} descriptor): shape {short(shape)}; expected a "
            f"list of non-negative ints"
        )
    name = descriptor.get("type")
    base = numeric_dtype(name) if type(name) is str else None
    if base is None:
        raise ParseError(
            f"{where} frame {index} ({htype} descriptor): type {short(name)} is not a "
            f"numeric numpy dtype name"
        )
    dtype = base.newbyteorder("<")
    label = f"frame {index + 1} ({htype} data)"
    buf = frame_buffer(frames[index + 1], f"{where} {label}")
    expected = math.prod(shape) * dtype.itemsize
    if len(buf) != expected:
        problem = "; the frame is truncated" if len(buf) < expected else ""
        raise ParseError(
            f"{where} {label}: {len(buf)} bytes, expected {expected} for shape {shape} of "
            f"{name} ({dtype.itemsize} bytes each){problem}"
        )
    return np.frombuffer(buf, dtype=dtype).reshape(numpy_shape(shape))


# --- frames --------------------------------------------------------------------------------------


def _appendix(frame: Any) -> Any:
    raw = frame_bytes(frame)
    try:
        return from_json(raw)
    except ValueError:
        return raw


def _json_object(typ: str, frame: Frame, index: int, label: str) -> dict[str, Any]:
    where = f"{typ} frame {index} ({label})"
    return load_json_object(frame, where, "a JSON object", show_value=True, separator=";")


def _expect_htype(typ: str, value: dict[str, Any], index: int, htype: str) -> None:
    got = value.get("htype")
    if got != htype:
        what = f"htype {got!r}" if "htype" in value else "no 'htype' field"
        raise ParseError(f"{typ} frame {index}: {what}; expected htype {htype!r}")


def _validate(typ: str, where: str, cls: type[_Model], fields: dict[str, Any]) -> _Model:
    """``fields`` validated into ``cls``, which must hold every field the detector sends (the
    model itself lets them default, for packets built by hand)."""
    invalid = f"{typ} {where}: invalid {fields.get('htype')!r} message"
    problems = [
        f"{name} is missing" if name not in fields else f"{name}: null, expected a value"
        for name in cls._sent_fields
        if name != "data" and fields.get(name) is None
    ]
    try:
        packet: _Model = cls.__pydantic_validator__.validate_python(fields)
    except ValidationError as exc:
        problems.append(summarise(exc, "header"))
        raise ParseError(f"{invalid}: {'; '.join(problems)}") from exc
    if problems:
        raise ParseError(f"{invalid}: {'; '.join(problems)}")
    return packet

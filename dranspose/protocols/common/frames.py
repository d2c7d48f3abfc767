"""Getting at a received frame's bytes, for every parser, classifier and capture writer.

Frames arrive as ``bytes`` (captures, tests), as ``zmq.Frame`` (sockets read with
``copy=False``) or as any object exposing a byte buffer. Every worker parses every image, so
binary payloads are looked at through a flat memoryview of the frame (:func:`frame_buffer`)
instead of a copy; decoders that need ``bytes`` (JSON, text lines, CBOR) get a copy only when the
frame is not ``bytes`` already (:func:`frame_bytes`). One owner for this keeps the zero-copy rule
and the wording of "not a frame" errors the same in every protocol.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Optional, Union

import numpy as np
import zmq

from dranspose.core.event import Frame as CoreFrame
from dranspose.protocols.common.errors import ParseError

__all__ = [
    "Buffer",
    "Frame",
    "array_dtype",
    "frame_buffer",
    "frame_bytes",
    "numeric_dtype",
    "size_text",
]

Frame = Union[CoreFrame, bytearray, memoryview]
"""What a parser takes as a frame: the data plane's frame type (``bytes`` or ``zmq.Frame``,
:data:`dranspose.core.event.Frame`) or a plain byte buffer a test or capture tool hands it."""

Buffer = Union[bytes, memoryview]
"""A frame's bytes as :func:`frame_buffer` gives them: ``bytes`` or a flat memoryview."""


def frame_buffer(frame: Frame, where: str, label: Optional[str] = None) -> Buffer:
    """The frame's bytes without copying: ``bytes`` as is, anything else as a flat memoryview.

    A frame without a byte buffer is a :class:`ParseError` starting with ``where``; ``label``
    names the frame in it (``"<where>: frame 1 (spectra) is a int, expected bytes"``), without
    it the message reads ``"<where>: got a int, expected bytes"``.
    """
    if type(frame) is bytes:
        return frame
    try:
        view = frame.buffer if isinstance(frame, zmq.Frame) else memoryview(frame)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
    except TypeError as exc:
        name = type(frame).__name__
        got = f"{label} is a {name}" if label else f"got a {name}"
        raise ParseError(f"{where}: {got}, expected bytes") from exc
    return view


def frame_bytes(frame: Frame, where: Optional[str] = None, expected: str = "bytes") -> bytes:
    """The frame as ``bytes``, copied only when it is not ``bytes`` already.

    A frame without a byte buffer is a :class:`ParseError` ``"<where>: got a int, expected
    <expected>"``, or, without ``where`` (code writing frames rather than parsing them), a
    ``TypeError``.
    """
    if type(frame) is bytes:
        return frame
    if isinstance(frame, zmq.Frame):
        return frame.bytes
    try:
        return bytes(memoryview(frame))
    except TypeError as exc:
        name = type(frame).__name__
        if where is None:
            raise TypeError(
                f"frames must be bytes, bytearray, memoryview or zmq.Frame, got {name}"
            ) from exc
        raise ParseError(f"{where}: got a {name}, expected {expected}") from exc


_NUMERIC_KINDS = "biufc"


@functools.lru_cache(maxsize=256)
def numeric_dtype(name: str, kinds: str = _NUMERIC_KINDS) -> Optional[np.dtype]:
    """The numpy dtype a header's type name (``"uint16"``, ``"<f8"``) stands for, or ``None``
    when it names no numeric dtype of one of ``kinds`` (numpy kind codes; complex included by
    default) with a non-zero size, which a frame of raw array data could hold. Cached: it runs
    for every image."""
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError, SyntaxError):
        return None
    if dtype.kind not in kinds or dtype.itemsize == 0:
        return None
    return dtype


def size_text(shape: Sequence[int], dtype: np.dtype) -> str:
    """What a frame of raw array data must hold, for "has 198 bytes, expected ..." messages."""
    return (
        f"{math.prod(shape) * dtype.itemsize} bytes for shape {shape} of {dtype.name} "
        f"({dtype.itemsize} bytes each)"
    )


def array_dtype(
    where: str,
    shape: Sequence[int],
    name: str,
    examples: str,
    source: str = "header",
    field: str = "type",
    kinds: str = _NUMERIC_KINDS,
) -> np.dtype:
    """The dtype of the raw array data that a ``source`` ("header", "descriptor") describes by
    ``shape`` and a type ``name`` in its ``field``; a :class:`ParseError` starting with
    ``where`` when a dimension is negative or the name is no numeric dtype (see
    :func:`numeric_dtype`), suggesting ``examples`` ("'uint16' or 'uint32'") instead."""
    if shape and min(shape) < 0:
        raise ParseError(f"{where}: {source} shape {shape} has a negative dimension")
    dtype = numeric_dtype(name, kinds)
    if dtype is None:
        raise ParseError(
            f"{where}: {source} {field} {name!r} is not a numeric numpy dtype; expected a name "
            f"such as {examples}"
        )
    return dtype

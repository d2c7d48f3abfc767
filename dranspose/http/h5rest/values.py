"""A published value seen as an array in its wire dtype, and its bytes and JSON forms.

Every tree value, whatever Python or numpy type it has, goes through :func:`as_data` once per
request, so the type a client is told and the bytes it then reads come from the same place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dranspose.http.h5rest.buffer import GrowingBuffer
from dranspose.http.h5rest.types import VLEN_STR, UnsupportedTypeError, wire_dtype

__all__ = ["VLEN_ITEM_BYTES", "Data", "as_data", "fill_json", "jsonable", "to_str", "vlen_bytes"]

#: What a variable-length string counts towards the size limit of a request.
VLEN_ITEM_BYTES = 16


def to_str(x: Any) -> str:
    """A string element as ``str`` (bytes are decoded as UTF-8, anything else is ``str()``)."""
    if isinstance(x, str):
        return x
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).decode("utf-8", errors="replace")
    return str(x)


@dataclass
class Data:
    """A tree value seen as an array; ``arr`` may be the live array (copy it under the lock)."""

    arr: np.ndarray
    wire: np.dtype
    fill: Any = None

    @property
    def vlen(self) -> bool:
        return bool(self.wire == VLEN_STR)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.arr.shape)

    @property
    def item_bytes(self) -> int:
        return VLEN_ITEM_BYTES if self.vlen else self.wire.itemsize

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.item_bytes

    def copy_out(self, index: Any = None) -> np.ndarray:
        """A C-contiguous copy of the selection ``index``, in the wire dtype."""
        src = self.arr if index is None else self.arr[index]
        kind = src.dtype.kind
        if self.vlen:
            if kind == "M":
                src = np.datetime_as_string(src)
            out = np.empty(src.shape, dtype=object)
            flat = out.reshape(-1)
            for i, item in enumerate(np.asarray(src).reshape(-1).tolist()):
                flat[i] = to_str(item)
            return out
        if kind == "c":
            complex_dt = np.dtype("<c8" if self.wire.itemsize == 8 else "<c16")
            return np.array(src, dtype=complex_dt, order="C").view(self.wire).reshape(src.shape)
        return np.array(src, dtype=self.wire, order="C", copy=True)


def _as_array(value: Any) -> tuple[np.ndarray, Any]:
    """(the value as an array, its fill value); UnsupportedTypeError when it is no array-like."""
    if isinstance(value, GrowingBuffer):
        return value.array, value.fill_value
    if isinstance(value, np.ndarray):
        return value, None
    if isinstance(value, str):
        return np.array(value, dtype=object), None
    if isinstance(value, (bytes, bytearray)):
        return (np.array(bytes(value)) if value else np.array(b"", dtype="S1")), None
    if isinstance(value, (np.generic, bool, int, float, complex, list, tuple)):
        return np.asarray(value), None
    if hasattr(value, "__array__"):
        return np.asarray(value), None
    raise UnsupportedTypeError(type(value).__name__)


def as_data(value: Any) -> Data:
    """A tree value as an array with its wire dtype (its ``repr`` when it has none)."""
    try:
        arr, fill = _as_array(value)
        if arr.dtype.kind == "O":
            arr = _infer_object_array(arr)
        wire = wire_dtype(arr.dtype)
    except (UnsupportedTypeError, ValueError, TypeError, OverflowError):
        arr, wire, fill = np.array(repr(value), dtype=object), VLEN_STR, None
    return Data(arr, wire, fill)


def _infer_object_array(arr: np.ndarray) -> np.ndarray:
    if all(isinstance(x, str) for x in arr.reshape(-1).tolist()):
        return arr
    inferred = np.asarray(arr.tolist())
    if inferred.dtype.kind == "O":
        raise UnsupportedTypeError("object array")
    return inferred


def vlen_bytes(arr: np.ndarray) -> bytes:
    """HDF REST binary strings: per element a little-endian int32 byte count, then UTF-8."""
    parts = []
    for item in arr.reshape(-1).tolist():
        encoded = to_str(item).encode("utf-8", errors="surrogatepass")
        parts.append(len(encoded).to_bytes(4, "little"))
        parts.append(encoded)
    return b"".join(parts)


def jsonable(x: Any) -> Any:
    """``ndarray.tolist()`` output as JSON data (bytes decoded, tuples as lists)."""
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).decode("utf-8", errors="replace")
    if isinstance(x, np.generic):
        return jsonable(x.item())
    return x


def fill_json(data: Data) -> Any:
    """The JSON ``fillValue`` of a dataset (None when it has none to declare)."""
    if data.fill is None:
        return None
    fill = np.asarray(data.fill)
    if data.vlen:
        return to_str(fill.item())
    if fill.dtype.kind == "c":
        return [fill.real.item(), fill.imag.item()]
    return jsonable(fill.item())

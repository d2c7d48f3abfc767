"""numpy dtypes and shapes as the HDF5/JSON descriptions the HDF REST API sends.

Clients decode the bytes of a value by the type they were told, so the server picks one *wire*
dtype per value (packed, little-endian, strings as variable-length UTF-8) and converts every
read to it; the JSON type, shape and chunk layout all describe that wire dtype.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "CHUNK_TARGET_BYTES",
    "VLEN_STR",
    "UnsupportedTypeError",
    "chunks",
    "shape_json",
    "type_json",
    "wire_dtype",
]

#: About the size of one declared chunk (h5pyd 0.18 splits a refused read along chunks).
CHUNK_TARGET_BYTES = 1024 * 1024

#: The wire "dtype" of variable-length UTF-8 strings.
VLEN_STR = np.dtype(object)


class UnsupportedTypeError(Exception):
    """A value HDF5 cannot describe as it is; it is then served as the string of its repr."""


def _fields(dt: np.dtype) -> list[tuple[str, np.dtype]]:
    """(name, dtype) of each field of a structured dtype, in order."""
    fields = dt.fields
    if dt.names is None or fields is None:
        return []
    return [(name, fields[name][0]) for name in dt.names]


def _wire_compound(dt: np.dtype) -> np.dtype:
    """A structured dtype without padding, its fields in wire dtypes."""
    fields = []
    for name, field in _fields(dt):
        sub = wire_dtype(field)
        if sub == VLEN_STR or field.kind == "c":
            raise UnsupportedTypeError(f"field {name!r} of type {field}")
        fields.append((name, sub))
    if not fields:
        raise UnsupportedTypeError("structured dtype without fields")
    return np.dtype(fields)


def wire_dtype(dt: np.dtype) -> np.dtype:
    """The dtype sent to clients (packed, little-endian), ``VLEN_STR`` for strings."""
    if dt.names is not None:
        return _wire_compound(dt)
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        sub = wire_dtype(base)
        if sub == VLEN_STR or base.kind == "c":
            raise UnsupportedTypeError(f"sub-array of {base}")
        return np.dtype((sub, shape))
    kind = dt.kind
    if kind == "b":
        return np.dtype(np.bool_)
    if kind in "iu":
        return dt.newbyteorder("<")
    if kind == "f":
        return np.dtype(f"<f{dt.itemsize}" if dt.itemsize in (2, 4, 8) else "<f8")
    if kind == "c":
        size = 4 if dt.itemsize == 8 else 8
        return np.dtype([("r", f"<f{size}"), ("i", f"<f{size}")])
    if kind == "S" and dt.itemsize > 0:
        return dt
    if kind in "UOMmT":
        return VLEN_STR
    raise UnsupportedTypeError(f"dtype {dt}")


def type_json(wire: np.dtype) -> dict[str, Any]:
    """The HDF5/JSON type of a wire dtype."""
    if wire == VLEN_STR:
        return {
            "class": "H5T_STRING",
            "charSet": "H5T_CSET_UTF8",
            "length": "H5T_VARIABLE",
            "strPad": "H5T_STR_NULLTERM",
        }
    if wire.names is not None:
        return {
            "class": "H5T_COMPOUND",
            "fields": [{"name": n, "type": type_json(field)} for n, field in _fields(wire)],
        }
    if wire.subdtype is not None:
        base, shape = wire.subdtype
        return {"class": "H5T_ARRAY", "dims": list(shape), "base": type_json(base)}
    kind, bits = wire.kind, wire.itemsize * 8
    if kind == "b":
        return {
            "class": "H5T_ENUM",
            "base": {"class": "H5T_INTEGER", "base": "H5T_STD_I8LE"},
            "mapping": {"FALSE": 0, "TRUE": 1},
        }
    if kind in "iu":
        return {"class": "H5T_INTEGER", "base": f"H5T_STD_{'I' if kind == 'i' else 'U'}{bits}LE"}
    if kind == "f":
        return {"class": "H5T_FLOAT", "base": f"H5T_IEEE_F{bits}LE"}
    return {  # "S"
        "class": "H5T_STRING",
        "charSet": "H5T_CSET_ASCII",
        "length": wire.itemsize,
        "strPad": "H5T_STR_NULLPAD",
    }


def shape_json(shape: tuple[int, ...], resizable: bool) -> dict[str, Any]:
    """The HDF5/JSON dataspace; ``resizable`` ones declare every dimension unlimited."""
    if not shape:
        return {"class": "H5S_SCALAR"}
    out: dict[str, Any] = {"class": "H5S_SIMPLE", "dims": list(shape)}
    if resizable:
        out["maxdims"] = [0] * len(shape)  # H5S_UNLIMITED
    return out


def chunks(shape: tuple[int, ...], item_bytes: int) -> list[int]:
    """About 1 MiB chunks: whole trailing dimensions, rows along the first one."""
    row_bytes = max(1, item_bytes * math.prod(shape[1:]))
    first = max(1, min(shape[0], CHUNK_TARGET_BYTES // row_bytes))
    return [first] + [max(1, n) for n in shape[1:]]

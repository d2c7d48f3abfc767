"""Serve a live ``publish`` tree as a read-only HDF5 domain over the HDF REST API.

Scientists open the reducer's results with the HDF Group's client or with silx::

    f = h5pyd.File("http://host:port/", "r")     # h5pyd 0.18 ... 1.x
    silx view http://host:port/

:func:`create_h5_router` returns a FastAPI router answering the requests h5pyd makes (the
subset of the HDF REST API a reader needs). Mount it at the root of the app
(``app.include_router(router)``) so the URL above works; under a prefix, clients must pass
``endpoint="http://host:port/prefix"`` and the domain ``"/"`` instead. The ``domain`` query
parameter is accepted and ignored: every domain name shows the same tree.

The tree
--------
``get_tree()`` returns the ``publish`` tree; ``get_lock()`` returns a context manager held while
the tree is read (the reducer's ``publish_rlock``), so a reader never sees a half-updated array:
every value is copied while the lock is held and serialised after it is released.

* A dict (any ``Mapping``) is a group; its members are listed in insertion order.
  Non-string keys are shown as ``str(key)`` (a string key of the same name wins); keys that are
  empty, ``"."``, ``".."`` or contain ``"/"`` cannot be HDF5 link names and are not listed,
  nor are ``None`` values.
* Everything else is a dataset: numpy arrays and scalars, Python ``bool``/``int``/``float``/
  ``complex``, ``str`` (a variable-length UTF-8 string), ``bytes`` (a fixed-length string),
  lists/tuples of numbers or strings (converted with ``numpy.asarray``) and
  :class:`GrowingBuffer`. Numbers go out as little-endian HDF5 types, ``bool`` as h5py's
  ``FALSE``/``TRUE`` enum, complex numbers as h5py's ``r``/``i`` compound, structured arrays as
  compounds (without padding), numpy unicode (``U``), datetime and timedelta arrays as
  variable-length UTF-8 strings. Anything else (ragged lists, arbitrary objects, structured
  arrays with complex or unicode fields) is shown as a scalar string holding its ``repr``, as
  the JSON API does.
* Attributes, by convention: a dict stored under ``"<name>_attrs"`` next to the key ``<name>``
  holds the attributes of member ``<name>``, and a dict under ``"_attrs"`` inside a group holds
  the group's own attributes (for a sub-group both apply; the sibling ``<name>_attrs`` wins on
  a clash). These keys are not listed as members; an ``"x_attrs"`` dict with no key ``"x"``
  next to it is an ordinary group. Attribute values follow the dataset rules above; dicts and
  ``None`` inside an attribute dict are skipped::

      publish = {
          "_attrs": {"NX_class": "NXentry", "default": "image"},   # the root group's
          "image": np.zeros((100, 100), np.uint16),
          "image_attrs": {"units": "counts", "interpretation": "image"},
      }

Object ids are derived from the path: ``g-``/``d-`` and a 128-bit hash of the member names,
formatted like a UUID (h5pyd 1.x rejects ids of any other form, so a reversible encoding of the
path does not fit). An id is found again from a bounded cache of the ids handed out, or else by
walking the tree: ids stay valid across server restarts and no id table follows the tree.

Live data and the clients
-------------------------
Every non-scalar dataset declares all its dimensions unlimited (``maxdims`` 0), since any value
of the tree may be replaced by a larger one, and a chunked layout of about 1 MiB chunks (which
lets h5pyd 0.18 split a read that the server refuses as too large into smaller ones).
Clients keep the metadata they have read:

* h5pyd 0.18 caches every small JSON answer (links, shapes, attributes) for the life of the
  ``File`` unless it is opened with ``use_cache=False``; then
  ``dset.get_shape(check_server=True)`` re-reads ``/shape`` and ``f["name"]`` finds new members.
* h5pyd 1.x keeps each object's JSON (links, attributes, shape) until ``obj.refresh()``; call
  ``dset.refresh()`` before reading a dataset that changed shape (a read of the whole old
  shape is sent without a selection and fails when the size differs).

Reopening the file always shows the current tree.

Values
------
``/datasets/{id}/value?select=[start:stop:step,...]`` answers raw C-order little-endian bytes
(``application/octet-stream``) when the request's ``Accept`` asks for that type, JSON
``{"value": ...}`` otherwise. Variable-length strings go out in the HDF REST binary form (per
element a little-endian int32 byte count, then the UTF-8 bytes) when asked for octet-stream:
JSON nests values by the selection's dimensions and cannot tell ``ds[0]`` from ``ds[0:1]``
(both are sent as ``[0:1,...]``), which made h5pyd misread a row of a 2-d string dataset.
In JSON, NaN and infinities are written as ``NaN``/``Infinity``/``-Infinity`` (as Python's
``json`` module, and so h5pyd, reads them). A dimension may be ``start:stop[:step]``
(``start``/``stop`` may be left out), a single index (dropped from the JSON nesting), or one
coordinate list ``[i,j,k]`` per selection; a POST to the same URL takes point selections
(uint64 coordinates as ``application/octet-stream``, or JSON ``{"points": ...}``) and long
selections (JSON ``{"select": ...}``). Negative indices, steps below 1, out-of-range selections
and the unsupported ``query``/``fields`` parameters answer 400 with the reason. A selection of
more than ``max_selection_bytes`` (:data:`MAX_SELECTION_BYTES`, 512 MiB, by default: elements
times item size, 16 bytes per variable-length string) answers 413. Unknown ids, links and
attributes answer 404. Writes are not routed (PUT/DELETE answer 405): the domain is read-only.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import operator
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator, Optional, Sequence

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dranspose.http.auth import READ

__all__ = ["MAX_SELECTION_BYTES", "GrowingBuffer", "create_h5_router"]

#: Default limit of one value request (elements times item size); larger ones answer 413.
MAX_SELECTION_BYTES = 512 * 1024 * 1024

_ATTRS_KEY = "_attrs"
_ATTRS_SUFFIX = "_attrs"
_CHUNK_TARGET_BYTES = 1024 * 1024
_VLEN_ITEM_BYTES = 16  # what a variable-length string counts towards the size limit
_ID_CACHE_SIZE = 65536


# --------------------------------------------------------------------------- GrowingBuffer


class GrowingBuffer:
    """A sequence of rows that grows as rows arrive in any order, served as one dataset.

    ``buf[event_number] = row`` stores a row of shape ``row_shape`` at that index, growing the
    storage as needed (the capacity at least doubles, so appending costs amortised O(1)).
    Rows never written read as ``fill_value``: NaN for float and complex dtypes, ``False`` for
    bool, empty for strings and 0 otherwise, unless one is given. ``len(buf)``, ``buf.shape``,
    ``buf.array`` and ``numpy.asarray(buf)`` cover the rows ``0 .. highest index written``.
    Slices with an explicit, non-negative stop also assign (``buf[4:8] = rows``).

    ``buf.array`` is a view of the storage: it sees later writes to its rows, not rows added
    beyond it, and keeps the old storage alive after a growth. Assign under the payload's
    ``publish_rlock`` like any other change of the published tree.

    >>> buf = GrowingBuffer(np.float64, row_shape=(2,))
    >>> buf[3] = [1.0, 2.0]
    >>> buf.shape
    (4, 2)
    """

    def __init__(
        self,
        dtype: Any = np.float64,
        row_shape: Sequence[int] | int = (),
        fill_value: Any = None,
        capacity: int = 16,
    ) -> None:
        self._dtype = np.dtype(dtype)
        if isinstance(row_shape, (int, np.integer)):
            row_shape = (int(row_shape),)
        self._row_shape = tuple(operator.index(n) for n in row_shape)
        if any(n < 0 for n in self._row_shape):
            raise ValueError(f"negative row_shape {self._row_shape}")
        if fill_value is None:
            kind = self._dtype.kind
            if kind in "fc":
                fill_value = np.nan
            elif kind == "b":
                fill_value = False
            elif kind in "SU":
                fill_value = ""
            else:
                fill_value = 0
        self._fill = np.array(fill_value, dtype=self._dtype)  # fails early if it does not fit
        self._data = self._new_storage(max(1, int(capacity)))
        self._length = 0

    def _new_storage(self, capacity: int) -> np.ndarray:
        return np.full((capacity,) + self._row_shape, self._fill, dtype=self._dtype)

    def _reserve(self, length: int) -> None:
        capacity = self._data.shape[0]
        if length > capacity:
            new = self._new_storage(max(length, 2 * capacity))
            new[: self._length] = self._data[: self._length]
            self._data = new

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            if index.stop is None:
                raise IndexError("GrowingBuffer slices need an explicit stop")
            start = operator.index(index.start or 0)
            stop = operator.index(index.stop)
            step = operator.index(index.step or 1)
            if start < 0 or stop < 0 or step < 1:
                raise IndexError("GrowingBuffer takes non-negative indices and positive steps")
            rows = range(start, stop, step)
            end = rows[-1] + 1 if rows else 0
        else:
            index = operator.index(index)
            if index < 0:
                raise IndexError(f"GrowingBuffer index {index} is negative")
            end = index + 1
        self._reserve(end)
        self._data[index] = value
        self._length = max(self._length, end)

    def __getitem__(self, index: Any) -> Any:
        return self.array[index]

    def __len__(self) -> int:
        return self._length

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        arr = self.array
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            return arr.astype(dtype)
        return arr.copy() if copy else arr

    @property
    def array(self) -> np.ndarray:
        """The rows ``0 .. highest index written`` (a view of the storage)."""
        return self._data[: self._length]

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._length,) + self._row_shape

    @property
    def ndim(self) -> int:
        return 1 + len(self._row_shape)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def row_shape(self) -> tuple[int, ...]:
        return self._row_shape

    @property
    def fill_value(self) -> Any:
        return self._fill[()]

    @property
    def capacity(self) -> int:
        return self._data.shape[0]

    def clear(self) -> None:
        """Forget every row (the storage is kept and refilled with the fill value)."""
        self._data[: self._length] = self._fill
        self._length = 0

    def __repr__(self) -> str:
        return f"GrowingBuffer(shape={self.shape}, dtype={self._dtype}, capacity={self.capacity})"


# --------------------------------------------------------------------------- types and values


class _Unsupported(Exception):
    pass


_VLEN_STR = np.dtype(object)  # the wire "dtype" of variable-length UTF-8 strings


def _wire_dtype(dt: np.dtype) -> np.dtype:
    """The dtype sent to clients (packed, little-endian), ``_VLEN_STR`` for strings."""
    if dt.names is not None:
        fields = []
        for name in dt.names:
            field = dt.fields[name][0]
            sub = _wire_dtype(field)
            if sub == _VLEN_STR or field.kind == "c":
                raise _Unsupported(f"field {name!r} of type {field}")
            fields.append((name, sub))
        if not fields:
            raise _Unsupported("structured dtype without fields")
        return np.dtype(fields)
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        sub = _wire_dtype(base)
        if sub == _VLEN_STR or base.kind == "c":
            raise _Unsupported(f"sub-array of {base}")
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
        return _VLEN_STR
    raise _Unsupported(f"dtype {dt}")


def _type_json(wire: np.dtype) -> dict[str, Any]:
    """The HDF5/JSON type of a wire dtype."""
    if wire == _VLEN_STR:
        return {
            "class": "H5T_STRING",
            "charSet": "H5T_CSET_UTF8",
            "length": "H5T_VARIABLE",
            "strPad": "H5T_STR_NULLTERM",
        }
    if wire.names is not None:
        return {
            "class": "H5T_COMPOUND",
            "fields": [{"name": n, "type": _type_json(wire.fields[n][0])} for n in wire.names],
        }
    if wire.subdtype is not None:
        base, shape = wire.subdtype
        return {"class": "H5T_ARRAY", "dims": list(shape), "base": _type_json(base)}
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


def _to_str(x: Any) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).decode("utf-8", errors="replace")
    return str(x)


@dataclass
class _Data:
    """A tree value seen as an array; ``arr`` may be the live array (copy it under the lock)."""

    arr: np.ndarray
    wire: np.dtype
    fill: Any = None

    @property
    def vlen(self) -> bool:
        return self.wire == _VLEN_STR

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.arr.shape)

    @property
    def item_bytes(self) -> int:
        return _VLEN_ITEM_BYTES if self.vlen else self.wire.itemsize

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
                flat[i] = _to_str(item)
            return out
        if kind == "c":
            complex_dt = np.dtype("<c8" if self.wire.itemsize == 8 else "<c16")
            return np.array(src, dtype=complex_dt, order="C").view(self.wire).reshape(src.shape)
        return np.array(src, dtype=self.wire, order="C", copy=True)


def _as_data(value: Any) -> _Data:
    """A tree value as an array with its wire dtype (its ``repr`` when it has none)."""
    fill = None
    try:
        if isinstance(value, GrowingBuffer):
            arr, fill = value.array, value.fill_value
        elif isinstance(value, np.ndarray):
            arr = value
        elif isinstance(value, str):
            arr = np.array(value, dtype=object)
        elif isinstance(value, (bytes, bytearray)):
            arr = np.array(bytes(value)) if value else np.array(b"", dtype="S1")
        elif isinstance(value, (np.generic, bool, int, float, complex, list, tuple)):
            arr = np.asarray(value)
        elif hasattr(value, "__array__"):
            arr = np.asarray(value)
        else:
            raise _Unsupported(type(value).__name__)
        if arr.dtype.kind == "O":
            arr = _infer_object_array(arr)
        wire = _wire_dtype(arr.dtype)
    except (_Unsupported, ValueError, TypeError, OverflowError):
        arr, wire, fill = np.array(repr(value), dtype=object), _VLEN_STR, None
    return _Data(arr, wire, fill)


def _infer_object_array(arr: np.ndarray) -> np.ndarray:
    if all(isinstance(x, str) for x in arr.reshape(-1).tolist()):
        return arr
    inferred = np.asarray(arr.tolist())
    if inferred.dtype.kind == "O":
        raise _Unsupported("object array")
    return inferred


def _vlen_bytes(arr: np.ndarray) -> bytes:
    """HDF REST binary strings: per element a little-endian int32 byte count, then UTF-8."""
    parts = []
    for item in arr.reshape(-1).tolist():
        encoded = _to_str(item).encode("utf-8", errors="surrogatepass")
        parts.append(len(encoded).to_bytes(4, "little"))
        parts.append(encoded)
    return b"".join(parts)


def _jsonable(x: Any) -> Any:
    """``ndarray.tolist()`` output as JSON data (bytes decoded, tuples as lists)."""
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).decode("utf-8", errors="replace")
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


def _fill_json(data: _Data) -> Any:
    if data.fill is None:
        return None
    fill = np.asarray(data.fill)
    if data.vlen:
        return _to_str(fill.item())
    if fill.dtype.kind == "c":
        return [fill.real.item(), fill.imag.item()]
    return _jsonable(fill.item())


def _shape_json(shape: tuple[int, ...], resizable: bool) -> dict[str, Any]:
    if not shape:
        return {"class": "H5S_SCALAR"}
    out: dict[str, Any] = {"class": "H5S_SIMPLE", "dims": list(shape)}
    if resizable:
        out["maxdims"] = [0] * len(shape)  # H5S_UNLIMITED
    return out


def _chunks(shape: tuple[int, ...], item_bytes: int) -> list[int]:
    """About 1 MiB chunks: whole trailing dimensions, rows along the first one."""
    row_bytes = max(1, item_bytes * math.prod(shape[1:]))
    first = max(1, min(shape[0], _CHUNK_TARGET_BYTES // row_bytes))
    return [first] + [max(1, n) for n in shape[1:]]


# --------------------------------------------------------------------------- selections


class _BadSelect(ValueError):
    pass


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise _BadSelect("unbalanced ']'")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise _BadSelect("unbalanced '['")
    parts.append("".join(current))
    return parts


def _parse_int(text: str, what: str) -> int:
    text = text.strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise _BadSelect(f"{what} {text!r} is not an integer")
    value = int(text)
    if value < 0:
        raise _BadSelect(f"{what} {value} is negative (negative indices are not supported)")
    return value


@dataclass
class _Selection:
    index: tuple[Any, ...]
    size: int
    squeeze: tuple[int, ...] = ()  # dimensions selected by a single index


def _parse_select(text: Optional[str], shape: tuple[int, ...]) -> _Selection:
    """Parse an HDF REST ``select`` for a dataset of ``shape``; _BadSelect says what is wrong."""
    rank = len(shape)
    stripped = (text or "").strip()
    if not stripped:
        return _Selection(tuple(slice(0, n) for n in shape), math.prod(shape))
    if not (stripped.startswith("[") and stripped.endswith("]")):
        raise _BadSelect(f"select {text!r} must look like [start:stop:step,...]")
    inner = stripped[1:-1]
    dims = _split_top(inner) if inner.strip() else []
    if len(dims) != rank:
        raise _BadSelect(f"select {text!r} has {len(dims)} dimensions, the dataset has {rank}")
    index: list[Any] = []
    size = 1
    squeeze: list[int] = []
    lists = 0
    for d, (part, extent) in enumerate(zip(dims, shape)):
        part = part.strip()
        if part.startswith("["):
            if not part.endswith("]") or not part[1:-1].strip():
                raise _BadSelect(f"coordinate list {part!r} of dimension {d} is malformed")
            lists += 1
            if lists > 1:
                raise _BadSelect("only one coordinate list per selection is supported")
            what = f"coordinate of dimension {d}"
            coords = [_parse_int(c, what) for c in part[1:-1].split(",")]
            bad = [c for c in coords if c >= extent]
            if bad:
                raise _BadSelect(
                    f"coordinate {bad[0]} out of range for dimension {d} of extent {extent}"
                )
            index.append(np.array(coords, dtype=np.intp))
            size *= len(coords)
        elif ":" in part:
            fields = part.split(":")
            if len(fields) > 3:
                raise _BadSelect(f"{part!r} of dimension {d} has more than start:stop:step")
            start = _parse_int(fields[0], "start") if fields[0].strip() else 0
            stop = _parse_int(fields[1], "stop") if fields[1].strip() else extent
            step = 1
            if len(fields) == 3 and fields[2].strip():
                step = _parse_int(fields[2], "step")
                if step < 1:
                    raise _BadSelect(f"step {step} of dimension {d} must be at least 1")
            if stop > extent or start > stop:
                raise _BadSelect(
                    f"{start}:{stop} out of range for dimension {d} of extent {extent}"
                    " (did the dataset change? re-read its shape)"
                )
            index.append(slice(start, stop, step))
            size *= len(range(start, stop, step))
        else:
            i = _parse_int(part, f"index of dimension {d}")
            if i >= extent:
                raise _BadSelect(f"index {i} out of range for dimension {d} of extent {extent}")
            index.append(slice(i, i + 1))
            squeeze.append(d)
    return _Selection(tuple(index), size, tuple(squeeze))


@dataclass
class _FlatPoints:
    """Binary point coordinates: ``rank`` uint64 values per point."""

    coords: np.ndarray


def _parse_points(points: Any, shape: tuple[int, ...]) -> _Selection:
    rank = len(shape)
    if rank == 0:
        raise _BadSelect("point selections need a dataset with at least one dimension")
    if isinstance(points, _FlatPoints):
        if points.coords.size % rank:
            raise _BadSelect(f"{points.coords.size} coordinates are no whole {rank}-d points")
        if points.coords.size and points.coords.max() >= 2**62:
            raise _BadSelect("point coordinates out of range")
        points = points.coords.astype(np.int64).reshape(-1, rank)
    try:
        pts = np.asarray(points)
    except (ValueError, TypeError) as exc:
        raise _BadSelect(f"points are malformed: {exc}") from None
    if pts.size == 0:
        raise _BadSelect("no points given")
    if pts.dtype.kind not in "iu":
        raise _BadSelect("points must be integers")
    if pts.ndim == 1 and rank == 1:
        pts = pts.reshape(-1, 1)
    elif pts.ndim == 1 and pts.shape[0] == rank:
        pts = pts.reshape(1, rank)
    if pts.ndim != 2 or pts.shape[1] != rank:
        raise _BadSelect(f"points must be a list of {rank}-coordinate points")
    if (pts < 0).any():
        raise _BadSelect("negative point coordinates are not supported")
    for d in range(rank):
        if (pts[:, d] >= shape[d]).any():
            raise _BadSelect(f"a point is out of range in dimension {d} of extent {shape[d]}")
    return _Selection(tuple(pts[:, d].astype(np.intp) for d in range(rank)), len(pts))


# --------------------------------------------------------------------------- the tree


Path = tuple[str, ...]


def _valid_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..")


def _has_key_named(group: Mapping, name: str) -> bool:
    return name in group or any(str(k) == name for k in group if not isinstance(k, str))


def _is_attrs_key(group: Mapping, key: Any, value: Any) -> bool:
    """Whether ``key`` holds attributes: ``_attrs``, or ``<name>_attrs`` next to ``<name>``."""
    if not isinstance(key, str) or not isinstance(value, Mapping):
        return False
    if key == _ATTRS_KEY:
        return True
    base = key[: -len(_ATTRS_SUFFIX)]
    return key.endswith(_ATTRS_SUFFIX) and bool(base) and _has_key_named(group, base)


def _members(group: Mapping) -> Iterator[tuple[str, Any, Any]]:
    """The listed members, in insertion order: (name, key, value)."""
    seen: set[str] = set()
    for key, value in list(group.items()):  # a copy: readers may run without a lock
        if value is None or _is_attrs_key(group, key, value):
            continue
        if isinstance(key, str):
            name = key
        else:
            name = str(key)
            if name in group:  # a string key of that name wins
                continue
        if name in seen or not _valid_name(name):
            continue
        seen.add(name)
        yield name, key, value


def _child(group: Mapping, name: str) -> tuple[Any, Any]:
    """(key, value) of the member listed as ``name``; KeyError when there is none."""
    if name in group:
        value = group[name]
        if value is not None and _valid_name(name) and not _is_attrs_key(group, name, value):
            return name, value
        raise KeyError(name)
    for member, key, value in _members(group):
        if member == name:
            return key, value
    raise KeyError(name)


def _walk(tree: Any, path: Path) -> Any:
    node = tree
    for name in path:
        if not isinstance(node, Mapping):
            raise KeyError(name)
        node = _child(node, name)[1]
    return node


def _attributes(tree: Any, path: Path, node: Any) -> list[tuple[str, Any]]:
    """The attributes of the object at ``path`` (``node``), in insertion order."""
    merged: dict[str, Any] = {}
    if isinstance(node, Mapping):
        inner = node.get(_ATTRS_KEY)
        if isinstance(inner, Mapping):
            merged.update((str(k), v) for k, v in list(inner.items()))
    if path:
        parent = _walk(tree, path[:-1])
        key, _ = _child(parent, path[-1])
        sibling = parent.get(f"{key}{_ATTRS_SUFFIX}")
        if isinstance(sibling, Mapping):
            merged.update((str(k), v) for k, v in list(sibling.items()))
    return [
        (name, value)
        for name, value in merged.items()
        if value is not None and not isinstance(value, Mapping) and _valid_name(name)
    ]


def _kind_of(node: Any) -> str:
    return "g" if isinstance(node, Mapping) else "d"


def _iter_tree(tree: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, tree
    if isinstance(tree, Mapping):
        for name, _, value in _members(tree):
            yield from _iter_tree(value, path + (name,))


def _path_token(path: Path) -> str:
    digest = hashlib.blake2b(
        json.dumps(list(path), ensure_ascii=False).encode("utf-8"), digest_size=16
    ).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


_ID_RE = re.compile(r"([gdt])-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_KIND_NAME = {"g": "group", "d": "dataset", "t": "datatype"}


class _Ids:
    """Path -> id, and back via the ids handed out lately or a walk of the tree."""

    def __init__(self) -> None:
        self._paths: OrderedDict[str, Path] = OrderedDict()
        self._lock = threading.Lock()

    def make(self, kind: str, path: Path) -> str:
        token = _path_token(path)
        with self._lock:
            self._paths[token] = path
            self._paths.move_to_end(token)
            if len(self._paths) > _ID_CACHE_SIZE:
                self._paths.popitem(last=False)
        return f"{kind}-{token}"

    def resolve(self, tree: Any, obj_id: str, kind: str) -> tuple[Path, Any]:
        """(path, node) of a ``kind`` ('g' or 'd') id; HTTPException 404 when there is none."""
        match = _ID_RE.fullmatch(obj_id)
        if not match or match.group(1) != kind:
            raise HTTPException(404, f"{obj_id!r} is not a {_KIND_NAME[kind]} id of this domain")
        token = match.group(2)
        with self._lock:
            path = self._paths.get(token)
        if path is not None:
            try:
                node = _walk(tree, path)
            except KeyError:
                node = None
            if node is not None and _kind_of(node) == kind:
                return path, node
        for path, node in _iter_tree(tree):
            if _kind_of(node) == kind and _path_token(path) == token:
                self.make(kind, path)
                return path, node
        raise HTTPException(
            404, f"no {_KIND_NAME[kind]} with id {obj_id!r} (removed from the published tree?)"
        )


# --------------------------------------------------------------------------- HTTP helpers


def _json_response(content: Any) -> Response:
    body = json.dumps(content, allow_nan=True, ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode("utf-8"), media_type="application/json")


def _accepts_binary(request: Request) -> bool:
    for item in request.headers.get("accept", "").split(","):
        media, _, params = item.partition(";")
        if media.strip().lower() == "application/octet-stream":
            q = re.search(r"q\s*=\s*(\d*\.?\d+)", params)
            return not (q and float(q.group(1)) == 0.0)
    return False


def _flag(value: Optional[str]) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "f", "no", "n")


def _limit(
    items: list[dict[str, Any]], params: Mapping[str, str], key: str
) -> list[dict[str, Any]]:
    """Apply the HDF REST ``Marker`` (start after that name) and ``Limit`` parameters."""
    marker = params.get("Marker")
    if marker:
        names = [item[key] for item in items]
        items = items[names.index(marker) + 1 :] if marker in names else []
    limit = params.get("Limit")
    if limit:
        try:
            items = items[: max(0, int(limit))]
        except ValueError:
            raise HTTPException(400, f"Limit {limit!r} is not an integer") from None
    return items


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from None


def _name_list(body: Any, key: str) -> Optional[list[str]]:
    names = body.get(key) if isinstance(body, dict) else None
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        raise HTTPException(400, f"{key} must be a list of names")
    return names


# --------------------------------------------------------------------------- OpenAPI documentation
# The handlers read their query parameters and bodies from the request (the HDF REST API names
# and forms are h5pyd's); these entries only document them, so the schema tells clients, and the
# schema-driven bad-input tests, what each route accepts.


def _doc_query(*names: str) -> dict[str, Any]:
    return {
        "parameters": [
            {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
            for n in names
        ]
    }


def _doc_json_body(properties: dict[str, Any], binary: bool = False) -> dict[str, Any]:
    content: dict[str, Any] = {
        "application/json": {"schema": {"type": "object", "properties": properties}}
    }
    if binary:
        content["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": False, "content": content}}


_NAMES = {"type": "array", "items": {"type": "string"}}
_OBJECT_QUERY = _doc_query("domain", "include_links", "include_attrs", "getalias", "verbose")


# --------------------------------------------------------------------------- the router


def create_h5_router(
    get_tree: Callable[[], Any],
    get_lock: Callable[[], ContextManager[Any]],
    max_selection_bytes: int = MAX_SELECTION_BYTES,
) -> APIRouter:
    """A router serving ``get_tree()`` as a read-only HDF5 domain (see the module docs).

    ``get_lock()`` is entered around every read of the tree, e.g.
    ``lambda: reducer_api.publish_lock(reducer)``; a value request of more than
    ``max_selection_bytes`` answers 413.
    """
    router = APIRouter(tags=["hdf5"])
    ids = _Ids()
    started = time.time()
    root_id = ids.make("g", ())

    def root_tree() -> Any:
        tree = get_tree()
        return tree if isinstance(tree, Mapping) else {}

    def stamps() -> dict[str, float]:
        return {"created": started, "lastModified": time.time()}

    def links_of(path: Path, group: Mapping) -> list[dict[str, Any]]:
        links = []
        for position, (name, _, value) in enumerate(_members(group)):
            kind = _kind_of(value)
            links.append(
                {
                    "class": "H5L_TYPE_HARD",
                    "id": ids.make(kind, path + (name,)),
                    "title": name,
                    "collection": "groups" if kind == "g" else "datasets",
                    # creation order is insertion order (h5pyd 1.x sorts by it)
                    "created": started + position * 1e-3,
                }
            )
        return links

    def attrs_of(tree: Any, path: Path, node: Any, with_data: bool) -> list[dict[str, Any]]:
        attrs = []
        for position, (name, value) in enumerate(_attributes(tree, path, node)):
            data = _as_data(value)
            attr: dict[str, Any] = {
                "name": name,
                "type": _type_json(data.wire),
                "shape": _shape_json(data.shape, resizable=False),
                "created": started + position * 1e-3,
                "lastModified": time.time(),
            }
            if with_data:
                attr["value"] = _jsonable(data.copy_out().tolist())
            attrs.append(attr)
        return attrs

    def dataset_json(node: Any, verbose: bool) -> dict[str, Any]:
        data = _as_data(node)
        shape = data.shape
        if shape:
            layout = {"class": "H5D_CHUNKED", "dims": _chunks(shape, data.item_bytes)}
        else:
            layout = {"class": "H5D_CONTIGUOUS"}
        cpl: dict[str, Any] = {"layout": layout}
        fill = _fill_json(data)
        if fill is not None:
            cpl["fillValue"] = fill
        out = {
            "type": _type_json(data.wire),
            "shape": _shape_json(shape, resizable=bool(shape)),
            "layout": layout,
            "creationProperties": cpl,
        }
        if verbose:
            out.update(num_chunks=0, allocated_size=data.nbytes)
        return out

    def object_json(kind: str, obj_id: str, request: Request) -> Response:
        """A group or dataset with the h5pyd options include_links, include_attrs, getalias."""
        params = request.query_params
        include_attrs = _flag(params.get("include_attrs"))
        with get_lock():
            tree = root_tree()
            path, node = ids.resolve(tree, obj_id, kind)
            attrs = attrs_of(tree, path, node, with_data=include_attrs)
            out: dict[str, Any] = {"id": obj_id, "root": root_id}
            out["domain"] = params.get("domain", "/")
            if kind == "g":
                links = links_of(path, node)
                out.update(linkCount=len(links), creationProperties={"CreateOrder": 1})
                if _flag(params.get("include_links")):
                    out["links"] = {link["title"]: link for link in links}
            else:
                out.update(dataset_json(node, _flag(params.get("verbose"))))
        out.update(attributeCount=len(attrs), hrefs=[], **stamps())
        if include_attrs:
            out["attributes"] = {attr["name"]: attr for attr in attrs}
        if _flag(params.get("getalias")):
            out["alias"] = ["/" + "/".join(path)]
        return _json_response(out)

    # ---------------------------------------------------------------- domain and server

    @router.get("/", openapi_extra=_doc_query("domain", "verbose"))
    def get_domain(request: Request) -> Response:
        """The domain: its root group id (and object counts with ``verbose``)."""
        out: dict[str, Any] = {
            "root": root_id,
            "class": "domain",
            "owner": "dranspose",
            "domain": request.query_params.get("domain", "/"),
            "limits": {"max_request_size": max_selection_bytes},
            "compressors": [],
            "version": "dranspose-h5rest/1",
            "hrefs": [],
            **stamps(),
        }
        if _flag(request.query_params.get("verbose")):
            groups = datasets = size = 0
            with get_lock():
                for _, node in _iter_tree(root_tree()):
                    if isinstance(node, Mapping):
                        groups += 1
                    else:
                        datasets += 1
                        size += _as_data(node).nbytes
            out.update(
                num_groups=groups,
                num_datasets=datasets,
                num_datatypes=0,
                num_objects=groups + datasets,
                num_chunks=0,
                num_linked_chunks=0,
                allocated_bytes=size,
                metadata_bytes=0,
                linked_bytes=0,
                total_size=size,
            )
        return _json_response(out)

    @router.get("/about")
    def about() -> Response:
        return _json_response(
            {
                "name": "dranspose",
                "about": "live results of a dranspose reducer, read-only HDF REST API",
                "greeting": "Welcome to dranspose",
                "state": "READY",
                "start_time": int(started),
                "node_count": 1,
            }
        )

    @router.get("/info")
    def info() -> Response:
        return _json_response({"state": "READY", "start_time": int(started), "node_type": "sn"})

    def acl(user: str) -> dict[str, Any]:
        return {
            "userName": user,
            "create": False,
            "read": True,
            "update": False,
            "delete": False,
            "readACL": True,
            "updateACL": False,
        }

    @router.get("/acls")
    def get_acls() -> Response:
        return _json_response({"acls": [acl("default")], "hrefs": []})

    @router.get("/acls/{user}")
    def get_acl(user: str) -> Response:
        return _json_response({"acl": acl(user), "hrefs": []})

    # ---------------------------------------------------------------- groups and links

    @router.get("/groups/{obj_id}", openapi_extra=_OBJECT_QUERY)
    def get_group(obj_id: str, request: Request) -> Response:
        return object_json("g", obj_id, request)

    def group_links(obj_id: str) -> list[dict[str, Any]]:
        with get_lock():
            path, node = ids.resolve(root_tree(), obj_id, "g")
            return links_of(path, node)

    @router.get("/groups/{obj_id}/links", openapi_extra=_doc_query("pattern", "Limit", "Marker"))
    def get_links(obj_id: str, request: Request) -> Response:
        """The links in insertion order; ``pattern``, ``Marker`` and ``Limit`` apply."""
        links = group_links(obj_id)
        pattern = request.query_params.get("pattern")
        if pattern:
            links = [link for link in links if fnmatch.fnmatchcase(link["title"], pattern)]
        return _json_response({"links": _limit(links, request.query_params, "title"), "hrefs": []})

    # h5pyd's POSTs are queries: reads, for the access token (dranspose/http/auth.py)
    @router.post(
        "/groups/{obj_id}/links", openapi_extra={**READ, **_doc_json_body({"titles": _NAMES})}
    )
    async def post_links(obj_id: str, request: Request) -> Response:
        """Several links at once: body ``{"titles": [...]}`` (all links without it)."""
        titles = _name_list(await _json_body(request), "titles")
        links = await run_in_threadpool(group_links, obj_id)
        if titles is not None:
            by_title = {link["title"]: link for link in links}
            if titles and not any(t in by_title for t in titles):
                raise HTTPException(404, f"no links named {titles}")
            links = [by_title[t] for t in titles if t in by_title]
        return _json_response({"links": links, "hrefs": []})

    @router.get("/groups/{obj_id}/links/{name}")
    def get_link(obj_id: str, name: str) -> Response:
        links = group_links(obj_id)
        for link in links:
            if link["title"] == name:
                return _json_response({"link": link, "hrefs": [], **stamps()})
        raise HTTPException(404, f"group {obj_id!r} has no member {name!r}")

    # ---------------------------------------------------------------- datasets

    @router.get("/datasets/{obj_id}", openapi_extra=_OBJECT_QUERY)
    def get_dataset(obj_id: str, request: Request) -> Response:
        return object_json("d", obj_id, request)

    def dataset(obj_id: str) -> _Data:
        with get_lock():
            return _as_data(ids.resolve(root_tree(), obj_id, "d")[1])

    @router.get("/datasets/{obj_id}/shape")
    def get_shape(obj_id: str) -> Response:
        shape = dataset(obj_id).shape
        return _json_response({"shape": _shape_json(shape, bool(shape)), "hrefs": [], **stamps()})

    @router.get("/datasets/{obj_id}/type")
    def get_type(obj_id: str) -> Response:
        return _json_response({"type": _type_json(dataset(obj_id).wire), "hrefs": []})

    def read_value(
        obj_id: str, select: Optional[str], points: Any = None
    ) -> tuple[np.ndarray, bool]:
        """(a copy of the selection in the wire dtype, whether it holds strings)."""
        with get_lock():
            data = _as_data(ids.resolve(root_tree(), obj_id, "d")[1])
            try:
                if points is not None:
                    sel = _parse_points(points, data.shape)
                else:
                    sel = _parse_select(select, data.shape)
            except _BadSelect as exc:
                raise HTTPException(400, f"bad selection: {exc}") from None
            nbytes = sel.size * data.item_bytes
            if nbytes > max_selection_bytes:
                raise HTTPException(
                    413,
                    f"the selection is {nbytes} bytes, more than the limit of "
                    f"{max_selection_bytes} bytes; read it in smaller slices",
                )
            out = data.copy_out(sel.index if data.shape else None)
        if sel.squeeze:
            out = out.reshape([n for d, n in enumerate(out.shape) if d not in sel.squeeze])
        return out, data.vlen

    def refuse_queries(request: Request) -> None:
        for param in ("query", "fields"):
            if param in request.query_params:
                raise HTTPException(400, f"the {param!r} parameter is not supported")

    def value_response(out: np.ndarray, vlen: bool, request: Request) -> Response:
        if _accepts_binary(request):
            # the selection is already a private C-contiguous copy: send its memory as it is
            body = _vlen_bytes(out) if vlen else memoryview(out.reshape(-1)).cast("B")
            return Response(body, media_type="application/octet-stream")
        return _json_response({"value": _jsonable(out.tolist()), "hrefs": []})

    @router.get("/datasets/{obj_id}/value", openapi_extra=_doc_query("select"))
    def get_value(obj_id: str, request: Request) -> Response:
        """A selection, as bytes when Accept asks for application/octet-stream, else JSON."""
        refuse_queries(request)
        out, vlen = read_value(obj_id, request.query_params.get("select"))
        return value_response(out, vlen, request)

    @router.post(
        "/datasets/{obj_id}/value",
        openapi_extra={
            **READ,
            **_doc_query("select"),
            **_doc_json_body({"points": {}, "select": {"type": "string"}}, binary=True),
        },
    )
    async def post_value(obj_id: str, request: Request) -> Response:
        """Point selections (uint64 binary or ``{"points": ...}``) and long ``{"select": ...}``."""
        refuse_queries(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        select = request.query_params.get("select")
        points: Any = None
        if content_type == "application/octet-stream":
            raw = await request.body()
            if len(raw) % 8:
                raise HTTPException(400, "binary points must be whole uint64 values")
            points = _FlatPoints(np.frombuffer(raw, dtype="<u8"))
        else:
            body = await _json_body(request)
            if isinstance(body, dict) and "points" in body:
                points = body["points"]
            elif isinstance(body, dict) and isinstance(body.get("select"), str):
                select = body["select"]
            else:
                raise HTTPException(400, 'the body must be {"points": ...} or {"select": "..."}')
        out, vlen = await run_in_threadpool(read_value, obj_id, select, points)
        return value_response(out, vlen, request)

    @router.get("/datatypes/{obj_id}")
    def get_datatype(obj_id: str) -> Response:
        raise HTTPException(404, f"no datatype {obj_id!r}: this domain has no committed types")

    # ---------------------------------------------------------------- attributes

    for collection, kind in (("groups", "g"), ("datasets", "d")):
        _add_attribute_routes(router, collection, kind, ids, root_tree, get_lock, attrs_of)

    return router


def _add_attribute_routes(
    router: APIRouter,
    collection: str,
    kind: str,
    ids: _Ids,
    root_tree: Callable[[], Any],
    get_lock: Callable[[], ContextManager[Any]],
    attrs_of: Callable[[Any, Path, Any, bool], list[dict[str, Any]]],
) -> None:
    def attribute_list(obj_id: str, with_data: bool) -> list[dict[str, Any]]:
        with get_lock():
            tree = root_tree()
            path, node = ids.resolve(tree, obj_id, kind)
            return attrs_of(tree, path, node, with_data)

    def with_data(request: Request) -> bool:
        value = request.query_params.get("IncludeData")
        return value is None or _flag(value)

    def one(obj_id: str, name: str, data: bool) -> dict[str, Any]:
        for attr in attribute_list(obj_id, data):
            if attr["name"] == name:
                return attr
        raise HTTPException(404, f"{obj_id!r} has no attribute {name!r}")

    prefix = f"/{collection}/{{obj_id}}/attributes"

    @router.get(
        prefix,
        name=f"{collection}_attributes",
        openapi_extra=_doc_query("IncludeData", "Limit", "Marker"),
    )
    def get_attributes(obj_id: str, request: Request) -> Response:
        attrs = attribute_list(obj_id, with_data(request))
        attrs = _limit(attrs, request.query_params, "name")
        return _json_response({"attributes": attrs, "hrefs": []})

    @router.post(
        prefix,
        name=f"{collection}_attributes_by_name",
        openapi_extra={
            **READ,
            **_doc_query("IncludeData"),
            **_doc_json_body({"attr_names": _NAMES}),
        },
    )
    async def post_attributes(obj_id: str, request: Request) -> Response:
        """Several attributes at once: body ``{"attr_names": [...]}``."""
        names = _name_list(await _json_body(request), "attr_names")
        attrs = await run_in_threadpool(attribute_list, obj_id, with_data(request))
        if names is not None:
            by_name = {attr["name"]: attr for attr in attrs}
            if names and not any(n in by_name for n in names):
                raise HTTPException(404, f"no attributes named {names}")
            attrs = [by_name[n] for n in names if n in by_name]
        return _json_response({"attributes": attrs, "hrefs": []})

    @router.get(
        prefix + "/{name}", name=f"{collection}_attribute", openapi_extra=_doc_query("IncludeData")
    )
    def get_attribute(obj_id: str, name: str, request: Request) -> Response:
        return _json_response({**one(obj_id, name, with_data(request)), "hrefs": []})

    @router.get(prefix + "/{name}/value", name=f"{collection}_attribute_value")
    def get_attribute_value(obj_id: str, name: str) -> Response:
        return _json_response({"value": one(obj_id, name, True)["value"], "hrefs": []})

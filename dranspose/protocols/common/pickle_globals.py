"""What the globals a network pickle may name resolve to: :data:`ALLOWED_GLOBALS`.

:func:`dranspose.protocols.common.safe_pickle.safe_loads` looks every global a pickle names up in
this table and refuses the rest. Allowing numpy's own reconstructors is not enough:
``ndarray.__setstate__`` and ``dtype.__setstate__`` trust their state (flags, field tables, the
length of an object list), and a crafted state crashes the interpreter. So the numpy globals
resolve to stand-ins (:class:`PendingDtype`, :class:`PendingArray`) that record what the pickle
asks for, and the values are rebuilt here from checked descriptions with public numpy
constructors; object dtypes are refused. The byte-string builtins accept only the forms protocols
0-2 use for ``bytes``. Anything refused raises :class:`RefusedError`, which ``safe_loads`` reports
as a ``ParseError``.
"""

from __future__ import annotations

import functools
import math
import re
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Literal, NoReturn, Optional

import numpy as np

__all__ = ["ALLOWED_GLOBALS", "PendingArray", "PendingDtype", "RefusedError", "refuse"]

_MAX_DIMS = 64  # numpy's NPY_MAXDIMS (32 before numpy 2)
_TYPESTR = re.compile(r"([biufcSUVMmO])(\d+)\Z")
_ALIGNED_STRUCT = 0x80  # NPY_ALIGNED_STRUCT in a pickled dtype's flags


Order = Literal["C", "F"]


class RefusedError(Exception):
    """The pickle asked for something the allow-list does not permit; becomes a ParseError."""


def refuse(message: str) -> NoReturn:
    raise RefusedError(message)


# --- stand-ins for numpy objects -----------------------------------------------------------------


class PendingDtype:
    """A ``numpy.dtype(typestr, align, copy)`` call, completed by the state BUILD hands over.

    BUILD calls ``__setstate__`` when an object has one, so the pickle cannot set attributes.
    Unhashable, like arrays, so it cannot hide in a dict key or a set.
    """

    __slots__ = ("busy", "state", "typestr", "value")
    # unhashable on purpose; typeshed types object.__hash__ as a method, so None needs the ignore
    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __init__(self, typestr: str) -> None:
        self.typestr = typestr
        self.state: Any = None
        self.value: Optional[np.dtype] = None
        self.busy = False

    def __setstate__(self, state: Any) -> None:
        if self.state is not None or self.value is not None:
            refuse("numpy dtype state given twice or after the dtype was used")
        if state is None:
            refuse("numpy dtype state is None")
        self.state = state

    def resolve(self) -> np.dtype:
        value = self.value
        if value is None:
            if self.busy:
                refuse("numpy dtype contains itself")
            self.busy = True
            try:
                value = self.value = _dtype_from_state(self.typestr, self.state)
            finally:
                self.busy = False
        return value


class PendingArray:
    """An array from ``_reconstruct`` waiting for its state, or one already built."""

    __slots__ = ("value",)
    __hash__: ClassVar[None] = None  # type: ignore[assignment]  # unhashable, as above

    def __init__(self, value: Optional[np.ndarray] = None) -> None:
        self.value = value

    def __setstate__(self, state: Any) -> None:
        if self.value is not None:
            refuse("numpy array state given twice")
        self.value = _build_array(state)

    def resolve(self) -> np.ndarray:
        value = self.value
        if value is None:
            refuse("numpy array without its state (no BUILD after _reconstruct)")
        return value


# --- checked rebuilding of numpy values -------------------------------------------------------


def _dtype_of(value: Any, where: str) -> np.dtype:
    if type(value) is not PendingDtype:
        refuse(f"{where}: expected a pickled numpy dtype, got {type(value).__name__}")
    return value.resolve()


def _int(value: Any, where: str) -> int:
    if type(value) is not int:
        refuse(f"{where}: expected an int, got {type(value).__name__}")
    return value


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if type(value) is tuple and len(value) == 1 and type(value[0]) is int and value[0] >= 0:
        return value  # the common one-dimensional case, checked fast
    if type(value) is not tuple or len(value) > _MAX_DIMS:
        refuse(f"{where}: shape {value!r:.80} is not a tuple of at most {_MAX_DIMS} ints")
    for dim in value:
        if type(dim) is not int or dim < 0:
            refuse(f"{where}: shape {value!r:.80} has a dimension that is not a non-negative int")
    return value


def _dtype_from_state(typestr: str, state: Any) -> np.dtype:
    """:func:`_build_dtype`, cached for the common states that hold no nested dtypes."""
    try:
        return _cached_dtype(typestr, state)
    except TypeError:  # unhashable: a structured or subarray dtype, built each time
        return _build_dtype(typestr, state)


@functools.lru_cache(maxsize=256)
def _cached_dtype(typestr: str, state: Any) -> np.dtype:
    return _build_dtype(typestr, state)


def _build_dtype(typestr: str, state: Any) -> np.dtype:
    """A dtype from the ``numpy.dtype`` call's type string and its pickled state, checked."""
    match = _TYPESTR.match(typestr)
    if match is None:
        refuse(f"numpy dtype type string {typestr!r:.40} is not a plain type code")
    kind = match.group(1)
    if kind == "O":
        refuse("numpy object dtype (arrays of Python objects are not plain data)")
    dtype = np.dtype(typestr)
    if state is None:
        return dtype
    if type(state) is not tuple or len(state) not in (8, 9):
        refuse(f"numpy dtype state is not an 8 or 9 item tuple: {state!r:.80}")
    version, endian, subarray, names, fields, elsize, alignment, flags = state[:8]
    if version not in (3, 4) or type(version) is not int:
        refuse(f"numpy dtype state version {version!r} is not supported (expected 3 or 4)")
    if endian not in ("<", ">", "|", "="):
        refuse(f"numpy dtype byte order {endian!r:.20} is not one of '<', '>', '|', '='")
    elsize = _int(elsize, "numpy dtype itemsize")
    _int(alignment, "numpy dtype alignment")
    flags = _int(flags, "numpy dtype flags")

    if subarray is not None:
        if type(subarray) is not tuple or len(subarray) != 2:
            refuse(f"numpy dtype subarray is not a (dtype, shape) pair: {subarray!r:.80}")
        base = _dtype_of(subarray[0], "numpy subarray dtype")
        dtype = np.dtype((base, _shape(subarray[1], "numpy subarray dtype")))
    elif fields is not None:
        dtype = _structured(names, fields, elsize, bool(flags & _ALIGNED_STRUCT))
    elif kind in "SUV" and elsize > 0:
        if kind == "U" and elsize % 4:
            refuse(f"numpy unicode dtype itemsize {elsize} is not a multiple of 4")
        dtype = np.dtype(f"{kind}{elsize // 4 if kind == 'U' else elsize}")
    elif kind in "Mm":
        dtype = _datetime(kind, state[8] if len(state) == 9 else None)
    if endian in "<>" and dtype.byteorder != "|":
        dtype = dtype.newbyteorder(endian)
    if elsize > 0 and dtype.itemsize != elsize:
        refuse(f"numpy dtype {dtype} has itemsize {dtype.itemsize}, state says {elsize}")
    if dtype.hasobject:
        refuse("numpy dtype with object fields (arrays of Python objects are not plain data)")
    return dtype


def _structured(names: Any, fields: Any, itemsize: int, align: bool) -> np.dtype:
    if type(names) is not tuple or type(fields) is not dict or not set(names) <= set(fields):
        refuse("numpy structured dtype: names and fields do not match")
    formats, offsets, titles = [], [], []
    for name in names:
        if type(name) is not str:
            refuse(f"numpy structured dtype field name {name!r:.40} is not a str")
        entry = fields[name]
        if type(entry) is not tuple or len(entry) not in (2, 3):
            refuse(f"numpy structured dtype field {name!r}: expected (dtype, offset[, title])")
        formats.append(_dtype_of(entry[0], f"numpy structured dtype field {name!r}"))
        offsets.append(_int(entry[1], f"numpy structured dtype field {name!r} offset"))
        title = entry[2] if len(entry) == 3 else None
        if title is not None and type(title) is not str:
            refuse(f"numpy structured dtype field {name!r}: title is not a str")
        titles.append(title)
    if set(fields) - set(names) != {title for title in titles if title is not None}:
        refuse("numpy structured dtype: fields holds entries that are neither names nor titles")
    # all-None titles build the same dtype as no titles
    return np.dtype(
        {
            "names": list(names),
            "formats": formats,
            "offsets": offsets,
            "titles": titles,
            "itemsize": itemsize,
        },
        align=align,
    )


def _datetime(kind: str, metadata: Any) -> np.dtype:
    if metadata is None:
        return np.dtype(f"{kind}8")
    if type(metadata) is not tuple or len(metadata) != 2 or type(metadata[1]) is not tuple:
        refuse(f"numpy datetime dtype metadata is malformed: {metadata!r:.80}")
    info = metadata[1]
    if len(info) != 4 or type(info[0]) is not bytes:
        refuse(f"numpy datetime dtype unit is malformed: {info!r:.80}")
    unit = info[0].decode("ascii", "replace")
    count = _int(info[1], "numpy datetime unit multiplier")
    if not unit.isalpha():
        refuse(f"numpy datetime unit {unit!r:.20} is not a unit name")
    if unit == "generic":
        return np.dtype(f"{kind}8")
    return np.dtype(f"{kind}8[{count}{unit}]")


def _build_array(state: Any) -> np.ndarray:
    """An array from ndarray's pickled state ``(version, shape, dtype, is_fortran, data)``."""
    if type(state) is not tuple or len(state) not in (4, 5):
        refuse(f"numpy array state is not a 4 or 5 item tuple: {state!r:.80}")
    if len(state) == 5:
        if state[0] != 1 or type(state[0]) is not int:
            refuse(f"numpy array state version {state[0]!r:.20} is not supported (expected 1)")
        state = state[1:]
    shape, dtype_arg, fortran, raw = state
    shape = _shape(shape, "numpy array")
    dtype = _dtype_of(dtype_arg, "numpy array")
    if type(fortran) not in (bool, int):
        refuse(f"numpy array order flag is a {type(fortran).__name__}, expected a bool")
    return _from_bytes(raw, dtype, shape, "F" if fortran else "C", copy=True)


def _from_bytes(
    raw: Any, dtype: np.dtype, shape: tuple[int, ...], order: Order, copy: bool
) -> np.ndarray:
    if type(raw) not in (bytes, bytearray):
        refuse(f"numpy array data is a {type(raw).__name__}, expected bytes")
    if dtype.itemsize == 0:
        refuse(f"numpy array dtype {dtype} has no size")
    count = math.prod(shape)
    if len(raw) != count * dtype.itemsize:
        refuse(
            f"numpy array data has {len(raw)} bytes, expected {count * dtype.itemsize} for "
            f"shape {list(shape)} of {dtype}"
        )
    if copy and type(raw) is bytes:
        raw = bytearray(raw)
    array = np.frombuffer(raw, dtype=dtype)
    if len(shape) != 1:
        array = array.reshape(shape, order=order)
    return array


# --- what the allowed globals resolve to -----------------------------------------------------


def _np_dtype(typestr: Any, align: Any = False, copy: Any = False) -> PendingDtype:
    if type(typestr) is not str:
        refuse(f"numpy.dtype called with a {type(typestr).__name__}, expected a type string")
    if _TYPESTR.match(typestr) is None:
        refuse(f"numpy.dtype type string {typestr!r:.40} is not a plain type code")
    if typestr.startswith("O"):
        refuse("numpy object dtype (arrays of Python objects are not plain data)")
    return PendingDtype(typestr)


def _np_ndarray(*args: Any, **kwargs: Any) -> Any:
    refuse("numpy.ndarray may only be named as the type _reconstruct builds, not called")


def _np_reconstruct(subtype: Any, shape: Any, dtype: Any) -> PendingArray:
    if subtype is not _np_ndarray:
        refuse("numpy _reconstruct may only build numpy.ndarray")
    if math.prod(_shape(shape, "numpy _reconstruct")) != 0:
        refuse("numpy _reconstruct must start from an empty array")
    return PendingArray()


def _np_scalar(dtype_arg: Any, data: Any = None) -> Any:
    dtype = _dtype_of(dtype_arg, "numpy scalar")
    return _from_bytes(data, dtype, (1,), "C", copy=True)[0]


def _np_frombuffer(buf: Any, dtype_arg: Any, shape: Any, order: Any) -> PendingArray:
    dtype = _dtype_of(dtype_arg, "numpy _frombuffer")
    if order != "C" and order != "F":
        refuse(f"numpy _frombuffer order {order!r:.20} is not 'C' or 'F'")
    checked: Order = "C" if order == "C" else "F"
    return PendingArray(_from_bytes(buf, dtype, _shape(shape, "numpy _frombuffer"), checked, False))


def _latin1(value: Any, encoding: Any, what: str) -> bytes:
    if type(value) is not str or encoding not in ("latin1", "latin-1"):
        refuse(f"{what} is only allowed as (str, 'latin1'), the way pickle stores byte strings")
    return value.encode("latin-1")


def _codecs_encode(value: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    return _latin1(value, encoding, "_codecs.encode")


def _bytes(*args: Any) -> bytes:
    if not args:
        return b""
    if len(args) == 1 and type(args[0]) in (bytes, bytearray):
        return bytes(args[0])
    return _latin1(args[0], args[1] if len(args) == 2 else None, "builtins.bytes")


def _bytearray(*args: Any) -> bytearray:
    if not args:
        return bytearray()
    if len(args) == 1 and type(args[0]) in (bytes, bytearray):
        return bytearray(args[0])
    return bytearray(_latin1(args[0], args[1] if len(args) == 2 else None, "builtins.bytearray"))


# --- the table -------------------------------------------------------------------------------

_PLAIN: dict[str, Any] = {
    "set": set,
    "frozenset": frozenset,
    "complex": complex,
    "bytes": _bytes,
    "bytearray": _bytearray,
}
_NUMPY_CORE: dict[str, dict[str, Callable[..., Any]]] = {
    "multiarray": {"_reconstruct": _np_reconstruct, "scalar": _np_scalar},
    "_multiarray_umath": {"_reconstruct": _np_reconstruct, "scalar": _np_scalar},
    "numeric": {"_frombuffer": _np_frombuffer},
}

ALLOWED_GLOBALS: Mapping[tuple[str, str], Callable[..., Any]] = MappingProxyType(
    {
        **{("builtins", name): obj for name, obj in _PLAIN.items()},
        **{("__builtin__", name): obj for name, obj in _PLAIN.items()},
        ("_codecs", "encode"): _codecs_encode,
        ("collections", "OrderedDict"): OrderedDict,
        ("numpy", "dtype"): _np_dtype,
        ("numpy", "ndarray"): _np_ndarray,
        **{
            (f"{package}.{module}", name): obj
            for package in ("numpy.core", "numpy._core")
            for module, names in _NUMPY_CORE.items()
            for name, obj in names.items()
        },
    }
)
"""``(module, name)`` a pickle may name, and what it gets instead of the real object."""

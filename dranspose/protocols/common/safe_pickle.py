"""Unpickling of network data that can only build plain data and numpy values.

Some upstream sources (the Contrast scan controller, the Xspress3 meta frames) send Python
pickles. A plain ``pickle.loads`` of a received frame runs whatever callable the sender names,
so :func:`safe_loads` resolves only an allow-list of globals and refuses every other one with a
:class:`ParseError` naming it, before anything is called.

Allowing numpy's own reconstructors is not enough: ``ndarray.__setstate__`` and
``dtype.__setstate__`` trust their state (flags, field tables, the length of an object list), and
a crafted state crashes the interpreter. So the numpy globals resolve to stand-ins that record
what the pickle asks for; arrays, scalars and dtypes are then rebuilt from checked descriptions
with public numpy constructors, and object dtypes are refused. What the pickle can call:

* ``builtins``: ``set``, ``frozenset``, ``complex``; ``bytes``/``bytearray`` and
  ``_codecs.encode`` only in the forms protocols 0-2 use for byte strings;
* ``collections.OrderedDict``;
* ``numpy.dtype``, ``numpy.ndarray`` (only as the type handed to ``_reconstruct``), and
  ``_reconstruct``, ``scalar`` and ``_frombuffer`` under their ``numpy.core`` and ``numpy._core``
  module names (numpy 1 and numpy 2 pickles).

Arrays come back as writeable copies of the pickled bytes, like numpy's own unpickling, except
those stored with protocol 5's in-band buffers, which are views of the buffer as in numpy.
"""

from __future__ import annotations

import functools
import io
import math
import pickle
import pickletools
import re
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Callable, Optional, Union

import numpy as np

from dranspose.protocols.common.errors import ParseError

__all__ = ["ALLOWED_GLOBALS", "safe_loads"]

_MAX_DIMS = 64  # numpy's NPY_MAXDIMS (32 before numpy 2)
_TYPESTR = re.compile(r"([biufcSUVMmO])(\d+)\Z")
_ALIGNED_STRUCT = 0x80  # NPY_ALIGNED_STRUCT in a pickled dtype's flags


class _Refused(Exception):
    """The pickle asked for something the allow-list does not permit; becomes a ParseError."""


def _refuse(message: str) -> Any:
    raise _Refused(message)


# --- stand-ins for numpy objects -----------------------------------------------------------------


class _PendingDtype:
    """A ``numpy.dtype(typestr, align, copy)`` call, completed by the state BUILD hands over.

    BUILD calls ``__setstate__`` when an object has one, so the pickle cannot set attributes.
    Unhashable, like arrays, so it cannot hide in a dict key or a set.
    """

    __slots__ = ("busy", "state", "typestr", "value")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, typestr: str) -> None:
        self.typestr = typestr
        self.state: Any = None
        self.value: Optional[np.dtype] = None
        self.busy = False

    def __setstate__(self, state: Any) -> None:
        if self.state is not None or self.value is not None:
            _refuse("numpy dtype state given twice or after the dtype was used")
        if state is None:
            _refuse("numpy dtype state is None")
        self.state = state

    def resolve(self) -> np.dtype:
        value = self.value
        if value is None:
            if self.busy:
                _refuse("numpy dtype contains itself")
            self.busy = True
            try:
                value = self.value = _dtype_from_state(self.typestr, self.state)
            finally:
                self.busy = False
        return value


class _PendingArray:
    """An array from ``_reconstruct`` waiting for its state, or one already built."""

    __slots__ = ("value",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, value: Optional[np.ndarray] = None) -> None:
        self.value = value

    def __setstate__(self, state: Any) -> None:
        if self.value is not None:
            _refuse("numpy array state given twice")
        self.value = _build_array(state)

    def resolve(self) -> np.ndarray:
        value = self.value
        if value is None:
            _refuse("numpy array without its state (no BUILD after _reconstruct)")
        return value  # type: ignore[return-value]


def _dtype_of(value: Any, where: str) -> np.dtype:
    if type(value) is not _PendingDtype:
        _refuse(f"{where}: expected a pickled numpy dtype, got {type(value).__name__}")
    return value.resolve()


def _int(value: Any, where: str) -> int:
    if type(value) is not int:
        _refuse(f"{where}: expected an int, got {type(value).__name__}")
    return value  # type: ignore[no-any-return]


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if type(value) is tuple and len(value) == 1 and type(value[0]) is int and value[0] >= 0:
        return value  # the common one-dimensional case, checked fast
    if type(value) is not tuple or len(value) > _MAX_DIMS:
        _refuse(f"{where}: shape {value!r:.80} is not a tuple of at most {_MAX_DIMS} ints")
    for dim in value:
        if type(dim) is not int or dim < 0:
            _refuse(f"{where}: shape {value!r:.80} has a dimension that is not a non-negative int")
    return value  # type: ignore[no-any-return]


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
        _refuse(f"numpy dtype type string {typestr!r:.40} is not a plain type code")
    kind = match.group(1)
    if kind == "O":
        _refuse("numpy object dtype (arrays of Python objects are not plain data)")
    dtype = np.dtype(typestr)
    if state is None:
        return dtype
    if type(state) is not tuple or len(state) not in (8, 9):
        _refuse(f"numpy dtype state is not an 8 or 9 item tuple: {state!r:.80}")
    version, endian, subarray, names, fields, elsize, alignment, flags = state[:8]
    if version not in (3, 4) or type(version) is not int:
        _refuse(f"numpy dtype state version {version!r} is not supported (expected 3 or 4)")
    if endian not in ("<", ">", "|", "="):
        _refuse(f"numpy dtype byte order {endian!r:.20} is not one of '<', '>', '|', '='")
    elsize = _int(elsize, "numpy dtype itemsize")
    _int(alignment, "numpy dtype alignment")
    flags = _int(flags, "numpy dtype flags")

    if subarray is not None:
        if type(subarray) is not tuple or len(subarray) != 2:
            _refuse(f"numpy dtype subarray is not a (dtype, shape) pair: {subarray!r:.80}")
        base = _dtype_of(subarray[0], "numpy subarray dtype")
        dtype = np.dtype((base, _shape(subarray[1], "numpy subarray dtype")))
    elif fields is not None:
        dtype = _structured(names, fields, elsize, bool(flags & _ALIGNED_STRUCT))
    elif kind in "SUV" and elsize > 0:
        if kind == "U" and elsize % 4:
            _refuse(f"numpy unicode dtype itemsize {elsize} is not a multiple of 4")
        dtype = np.dtype(f"{kind}{elsize // 4 if kind == 'U' else elsize}")
    elif kind in "Mm":
        dtype = _datetime(kind, state[8] if len(state) == 9 else None)
    if endian in "<>" and dtype.byteorder != "|":
        dtype = dtype.newbyteorder(endian)
    if elsize > 0 and dtype.itemsize != elsize:
        _refuse(f"numpy dtype {dtype} has itemsize {dtype.itemsize}, state says {elsize}")
    if dtype.hasobject:
        _refuse("numpy dtype with object fields (arrays of Python objects are not plain data)")
    return dtype


def _structured(names: Any, fields: Any, itemsize: int, align: bool) -> np.dtype:
    if type(names) is not tuple or type(fields) is not dict or not set(names) <= set(fields):
        _refuse("numpy structured dtype: names and fields do not match")
    formats, offsets, titles = [], [], []
    for name in names:
        if type(name) is not str:
            _refuse(f"numpy structured dtype field name {name!r:.40} is not a str")
        entry = fields[name]
        if type(entry) is not tuple or len(entry) not in (2, 3):
            _refuse(f"numpy structured dtype field {name!r}: expected (dtype, offset[, title])")
        formats.append(_dtype_of(entry[0], f"numpy structured dtype field {name!r}"))
        offsets.append(_int(entry[1], f"numpy structured dtype field {name!r} offset"))
        title = entry[2] if len(entry) == 3 else None
        if title is not None and type(title) is not str:
            _refuse(f"numpy structured dtype field {name!r}: title is not a str")
        titles.append(title)
    if set(fields) - set(names) != {title for title in titles if title is not None}:
        _refuse("numpy structured dtype: fields holds entries that are neither names nor titles")
    spec: dict[str, Any] = {
        "names": list(names),
        "formats": formats,
        "offsets": offsets,
        "itemsize": itemsize,
    }
    if any(title is not None for title in titles):
        spec["titles"] = titles
    return np.dtype(spec, align=align)


def _datetime(kind: str, metadata: Any) -> np.dtype:
    if metadata is None:
        return np.dtype(f"{kind}8")
    if type(metadata) is not tuple or len(metadata) != 2 or type(metadata[1]) is not tuple:
        _refuse(f"numpy datetime dtype metadata is malformed: {metadata!r:.80}")
    info = metadata[1]
    if len(info) != 4 or type(info[0]) is not bytes:
        _refuse(f"numpy datetime dtype unit is malformed: {info!r:.80}")
    unit = info[0].decode("ascii", "replace")
    count = _int(info[1], "numpy datetime unit multiplier")
    if not unit.isalpha():
        _refuse(f"numpy datetime unit {unit!r:.20} is not a unit name")
    if unit == "generic":
        return np.dtype(f"{kind}8")
    return np.dtype(f"{kind}8[{count}{unit}]")


def _build_array(state: Any) -> np.ndarray:
    """An array from ndarray's pickled state ``(version, shape, dtype, is_fortran, data)``."""
    if type(state) is not tuple or len(state) not in (4, 5):
        _refuse(f"numpy array state is not a 4 or 5 item tuple: {state!r:.80}")
    if len(state) == 5:
        if state[0] != 1 or type(state[0]) is not int:
            _refuse(f"numpy array state version {state[0]!r:.20} is not supported (expected 1)")
        state = state[1:]
    shape, dtype_arg, fortran, raw = state
    shape = _shape(shape, "numpy array")
    dtype = _dtype_of(dtype_arg, "numpy array")
    if type(fortran) not in (bool, int):
        _refuse(f"numpy array order flag is a {type(fortran).__name__}, expected a bool")
    return _from_bytes(raw, dtype, shape, "F" if fortran else "C", copy=True)


def _from_bytes(
    raw: Any, dtype: np.dtype, shape: tuple[int, ...], order: str, copy: bool
) -> np.ndarray:
    if type(raw) not in (bytes, bytearray):
        _refuse(f"numpy array data is a {type(raw).__name__}, expected bytes")
    if dtype.itemsize == 0:
        _refuse(f"numpy array dtype {dtype} has no size")
    count = math.prod(shape)
    if len(raw) != count * dtype.itemsize:
        _refuse(
            f"numpy array data has {len(raw)} bytes, expected {count * dtype.itemsize} for "
            f"shape {list(shape)} of {dtype}"
        )
    if copy and type(raw) is bytes:
        raw = bytearray(raw)
    array = np.frombuffer(raw, dtype=dtype)
    if len(shape) != 1:
        array = array.reshape(shape, order=order)  # type: ignore[call-overload]
    return array


# --- what the allowed globals resolve to -----------------------------------------------------


def _np_dtype(typestr: Any, align: Any = False, copy: Any = False) -> _PendingDtype:
    if type(typestr) is not str:
        _refuse(f"numpy.dtype called with a {type(typestr).__name__}, expected a type string")
    if _TYPESTR.match(typestr) is None:
        _refuse(f"numpy.dtype type string {typestr!r:.40} is not a plain type code")
    if typestr.startswith("O"):
        _refuse("numpy object dtype (arrays of Python objects are not plain data)")
    return _PendingDtype(typestr)


def _np_ndarray(*args: Any, **kwargs: Any) -> Any:
    _refuse("numpy.ndarray may only be named as the type _reconstruct builds, not called")


def _np_reconstruct(subtype: Any, shape: Any, dtype: Any) -> _PendingArray:
    if subtype is not _np_ndarray:
        _refuse("numpy _reconstruct may only build numpy.ndarray")
    if math.prod(_shape(shape, "numpy _reconstruct")) != 0:
        _refuse("numpy _reconstruct must start from an empty array")
    return _PendingArray()


def _np_scalar(dtype_arg: Any, data: Any = None) -> Any:
    dtype = _dtype_of(dtype_arg, "numpy scalar")
    return _from_bytes(data, dtype, (1,), "C", copy=True)[0]


def _np_frombuffer(buf: Any, dtype_arg: Any, shape: Any, order: Any) -> _PendingArray:
    dtype = _dtype_of(dtype_arg, "numpy _frombuffer")
    if order not in ("C", "F"):
        _refuse(f"numpy _frombuffer order {order!r:.20} is not 'C' or 'F'")
    return _PendingArray(_from_bytes(buf, dtype, _shape(shape, "numpy _frombuffer"), order, False))


def _latin1(value: Any, encoding: Any, what: str) -> bytes:
    if type(value) is not str or encoding not in ("latin1", "latin-1"):
        _refuse(f"{what} is only allowed as (str, 'latin1'), the way pickle stores byte strings")
    return value.encode("latin-1")  # type: ignore[no-any-return]


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


_PLAIN: dict[str, Any] = {
    "set": set,
    "frozenset": frozenset,
    "complex": complex,
    "bytes": _bytes,
    "bytearray": _bytearray,
}
_NUMPY_CORE = {
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


# --- loading ---------------------------------------------------------------------------------


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, what: str) -> None:
        super().__init__(file)
        self._what = what

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ParseError(
                f"{self._what}: refused pickle global '{module}.{name}'; only plain data, "
                f"collections.OrderedDict and numpy arrays, scalars and dtypes are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("pickle uses persistent ids, which are not supported")


_BUSY = object()


class _Finisher:
    """Replace the stand-ins in an unpickled object graph with the numpy values they stand for.

    Lists and dicts are updated in place, so shared references stay shared; tuples are rebuilt
    when an item changes (a tuple that is part of a cycle and must change is refused).
    """

    def __init__(self) -> None:
        self.seen: dict[int, Any] = {}
        self.revisited: set[int] = set()

    def run(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is _PendingArray or kind is _PendingDtype:
            return obj.resolve()
        if kind is list:
            if self._first_visit(obj):
                for index, item in enumerate(obj):
                    if type(item) in _VISIT:
                        new = self.run(item)
                        if new is not item:
                            obj[index] = new
            return obj
        if kind is dict or kind is OrderedDict:
            if self._first_visit(obj):
                changes = []
                for key, item in obj.items():
                    if type(item) in _VISIT:
                        new = self.run(item)
                        if new is not item:
                            changes.append((key, new))
                for key, new in changes:
                    obj[key] = new
            return obj
        if kind is tuple:
            return self._tuple(obj)
        return obj

    def _first_visit(self, obj: Any) -> bool:
        key = id(obj)
        if key in self.seen:
            return False
        self.seen[key] = obj
        return True

    def _tuple(self, obj: tuple[Any, ...]) -> Any:
        key = id(obj)
        done = self.seen.get(key)
        if done is _BUSY:
            self.revisited.add(key)
            return obj
        if done is not None:
            return done
        self.seen[key] = _BUSY
        items = [self.run(item) if type(item) in _VISIT else item for item in obj]
        changed = any(new is not old for new, old in zip(items, obj))
        if changed and key in self.revisited:
            _refuse("a tuple holding numpy values is part of a reference cycle")
        result = tuple(items) if changed else obj
        self.seen[key] = result
        return result


_VISIT = frozenset({_PendingArray, _PendingDtype, list, dict, OrderedDict, tuple})


_UNKNOWN, _TWO_LINES, _ONE_LINE, _LEN1, _LEN4, _LEN8 = -1, -2, -3, -4, -5, -6


def _opcode_table() -> list[int]:
    """Per opcode byte, how to step over its argument: a fixed byte count, or how to find it."""
    table = [_UNKNOWN] * 256
    lengths = {
        pickletools.TAKEN_FROM_ARGUMENT1: _LEN1,
        pickletools.TAKEN_FROM_ARGUMENT4: _LEN4,
        pickletools.TAKEN_FROM_ARGUMENT4U: _LEN4,
        pickletools.TAKEN_FROM_ARGUMENT8U: _LEN8,
    }
    for op in pickletools.opcodes:
        n = op.arg.n if op.arg is not None else 0
        if n == pickletools.UP_TO_NEWLINE:
            table[ord(op.code)] = _TWO_LINES if op.code in "ci" else _ONE_LINE
        else:
            table[ord(op.code)] = lengths.get(n, n)
    return table


_STEP = _opcode_table()
_PUT, _LONG_BINPUT, _STOP = ord("p"), ord("r"), ord(".")


def _check_memo(raw: bytes, what: str) -> None:
    """Refuse memo indices no pickler writes, before the C unpickler sees them.

    The C unpickler keeps its memo as an array as long as the largest index stored: seven bytes
    (``K\x8fr\xb8^\xc6\x0c``) make it allocate gigabytes and spend seconds doing so, enough to
    get a worker with a memory limit killed. A pickler numbers memo entries from 0, one per
    opcode, so a real index is below the pickle's size. This steps over the opcodes without
    decoding them (a few times faster than ``pickletools.genops``); whatever it cannot step over
    is left to the unpickler to refuse in its own words.
    """
    size = len(raw)
    pos = 0
    find = raw.find
    while pos < size:
        code = raw[pos]
        step = _STEP[code]
        pos += 1
        if step >= 0:
            if code == _LONG_BINPUT and int.from_bytes(raw[pos : pos + 4], "little") >= size:
                break
            pos += step
        elif step == _LEN1:
            pos += 1 + (raw[pos] if pos < size else 0)
        elif step == _LEN4:
            pos += 4 + int.from_bytes(raw[pos : pos + 4], "little")
        elif step == _LEN8:
            pos += 8 + int.from_bytes(raw[pos : pos + 8], "little")
        elif step == _ONE_LINE:
            eol = find(b"\n", pos)
            if eol < 0:
                return
            digits = raw[pos:eol]
            if (
                code == _PUT
                and digits.isdigit()
                and (len(digits) > len(str(size)) or int(digits) >= size)
            ):
                break
            pos = eol + 1
        elif step == _TWO_LINES:
            first = find(b"\n", pos)
            eol = find(b"\n", first + 1) if first >= 0 else -1
            if eol < 0:
                return
            pos = eol + 1
        else:
            return
        if code == _STOP:
            return
    else:
        return
    raise ParseError(
        f"{what}: memo index at byte {pos - 1} is out of range for a {size}-byte pickle; "
        f"not a valid pickle"
    )


def safe_loads(data: Union[bytes, bytearray, memoryview], what: str) -> Any:
    """Unpickle ``data`` allowing only plain data, ``OrderedDict`` and numpy values.

    ``what`` names the data in error messages (for example ``"contrast frame 0"``). Raises
    :class:`ParseError` for a refused global (naming it as ``module.name``), an object dtype, a
    malformed or truncated pickle, or bytes left over after the pickle's end.
    """
    try:
        view = memoryview(data)
    except TypeError as exc:
        raise ParseError(
            f"{what}: got a {type(data).__name__}, expected bytes holding a pickle"
        ) from exc
    size = view.nbytes
    if size == 0:
        raise ParseError(f"{what}: empty frame, expected a pickle")
    _check_memo(data if type(data) is bytes else view.tobytes(), what)
    stream = io.BytesIO(view)
    try:
        obj = _RestrictedUnpickler(stream, what).load()
        result = _Finisher().run(obj)
    except ParseError:
        raise
    except _Refused as exc:
        raise ParseError(f"{what}: refused pickle: {exc}") from None
    except RecursionError as exc:
        raise ParseError(f"{what}: pickle is nested too deeply") from exc
    except (EOFError, pickle.UnpicklingError) as exc:
        if isinstance(exc, EOFError) or "truncated" in str(exc):
            raise ParseError(
                f"{what}: pickle is truncated ({size} bytes end before its STOP opcode)"
            ) from exc
        raise ParseError(f"{what}: not a valid pickle ({exc})") from exc
    except Exception as exc:  # the allowed constructors reject bad arguments in many ways
        raise ParseError(f"{what}: not a valid pickle ({type(exc).__name__}: {exc})") from exc
    end = stream.tell()
    if end != size:
        raise ParseError(
            f"{what}: {size - end} bytes follow the end of the pickle; expected exactly one pickle"
        )
    return result

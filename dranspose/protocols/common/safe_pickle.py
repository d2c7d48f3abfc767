"""Unpickling of network data that can only build plain data and numpy values.

Some upstream sources (the Contrast scan controller, the Xspress3 meta frames, LeCroy timestamps)
send Python pickles. A plain ``pickle.loads`` of a received frame runs whatever callable the
sender names, so :func:`safe_loads` resolves only the globals of an allow-list and refuses every
other one with a :class:`ParseError` naming it, before anything is called. What the pickle can
call (the table and the checked stand-ins it resolves to live in
:mod:`dranspose.protocols.common.pickle_globals`):

* ``builtins``: ``set``, ``frozenset``, ``complex``; ``bytes``/``bytearray`` and
  ``_codecs.encode`` only in the forms protocols 0-2 use for byte strings;
* ``collections.OrderedDict``;
* ``numpy.dtype``, ``numpy.ndarray`` (only as the type handed to ``_reconstruct``), and
  ``_reconstruct``, ``scalar`` and ``_frombuffer`` under their ``numpy.core`` and ``numpy._core``
  module names (numpy 1 and numpy 2 pickles); object dtypes are refused.

Arrays come back as writeable copies of the pickled bytes, like numpy's own unpickling, except
those stored with protocol 5's in-band buffers, which are views of the buffer as in numpy.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from collections import OrderedDict
from typing import Any

from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.frames import Frame
from dranspose.protocols.common.pickle_globals import (
    ALLOWED_GLOBALS,
    PendingArray,
    PendingDtype,
    RefusedError,
    refuse,
)

__all__ = ["ALLOWED_GLOBALS", "safe_loads"]


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
        raise RefusedError("pickle uses persistent ids, which are not supported")


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
        if kind is PendingArray or kind is PendingDtype:
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
            refuse("a tuple holding numpy values is part of a reference cycle")
        result = tuple(items) if changed else obj
        self.seen[key] = result
        return result


_VISIT = frozenset({PendingArray, PendingDtype, list, dict, OrderedDict, tuple})


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


def safe_loads(data: Frame, what: str) -> Any:
    """Unpickle ``data`` (``bytes``, a ``zmq.Frame`` or any byte buffer) allowing only plain
    data, ``OrderedDict`` and numpy values.

    ``what`` names the data in error messages (for example ``"contrast frame 0"``). Raises
    :class:`ParseError` for a refused global (naming it as ``module.name``), an object dtype, a
    malformed or truncated pickle, or bytes left over after the pickle's end.
    """
    try:
        view = memoryview(data)  # type: ignore[arg-type]  # a zmq.Frame exposes its buffer
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
    except RefusedError as exc:
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

"""Typed run-time parameters of worker and reducer classes.

A payload declares parameters with a static ``describe_parameters()`` returning instances of the
classes below. Values travel as raw bytes (``data``: what REST bodies and parameter files hold) and
are parsed to the declared type (``value``) exactly once, here, with an error that names the
parameter, the offending value and the expected type. Nothing is coerced silently.

Everything in this module is pure: reading a parameter *file* is the only I/O and it takes a path.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import pickle
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Iterable, Iterator, Literal, Mapping, Optional, Union

import cbor2
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictBytes,
    StrictInt,
    StrictStr,
    TypeAdapter,
)

from dranspose.core.protocol import Digest, ParameterName, WorkParameter

logger = logging.getLogger(__name__)

MAX_PARAMETER_BYTES = 16 * 1024 * 1024
"""Largest accepted raw value (16 MiB): enough for a poni file or a mask, small enough for Redis."""


class ParameterError(ValueError):
    """A parameter value, declaration or file is invalid; the message says which and why."""


class ParameterValueError(ParameterError):
    """A value does not parse as its parameter's declared type."""


def _show(data: bytes, limit: int = 60) -> str:
    """A short, unambiguous rendering of a raw value for error messages."""
    shown = data[:limit]
    suffix = f"... ({len(data)} bytes)" if len(data) > limit else ""
    return f"{shown!r}{suffix}"


class _OnClassOrInstance:
    """A method callable on the class, as the original's static ``from_bytes``/``to_bytes`` were
    (``IntParameter.from_bytes(b"3")``), and on a declaration, whose name then appears in errors.

    On the class it runs on an unnamed declaration with the class's defaults, so both calls parse
    the same way and a bad value is refused the same way (never coerced to a default).
    """

    def __init__(self, func: Any) -> None:
        self.func = func
        self.__doc__ = func.__doc__
        self.__name__ = func.__name__

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            obj = owner.model_construct(name=ParameterName(""))
        return functools.partial(self.func, obj)


class ParameterBase(BaseModel):
    """Common fields of every parameter declaration."""

    model_config = ConfigDict(extra="forbid", ignored_types=(_OnClassOrInstance,))

    name: ParameterName
    description: Optional[str] = None
    # the original's ParameterBase had no dtype; a bare one holds raw bytes
    dtype: str = "binary"
    default: Any = None

    expected: ClassVar[str] = "a value"

    @_OnClassOrInstance
    def from_bytes(self, by: bytes) -> Any:
        """Parse raw bytes to the typed value; raises :class:`ParameterValueError`."""
        if not isinstance(by, (bytes, bytearray, memoryview)):
            raise ParameterValueError(
                f"{self._label()}: raw data must be bytes, got {type(by).__name__}"
            )
        data = bytes(by)
        if len(data) > MAX_PARAMETER_BYTES:
            raise ParameterValueError(
                f"{self._label()}: value of {len(data)} bytes exceeds the limit of "
                f"{MAX_PARAMETER_BYTES} bytes"
            )
        return self._parse(data)

    @_OnClassOrInstance
    def to_bytes(self, val: Any) -> bytes:
        """Encode a typed value the way ``from_bytes`` reads it back."""
        return self._encode(val)

    def _encode(self, val: Any) -> bytes:
        return str(val).encode("utf8")

    def _parse(self, data: bytes) -> Any:
        return data

    def _label(self) -> str:
        return f"parameter {self.name!r}" if self.name else type(self).__name__

    def _text(self, data: bytes) -> str:
        try:
            return data.decode("utf8")
        except UnicodeDecodeError as exc:
            raise ParameterValueError(
                f"{self._label()}: value {_show(data)} is not UTF-8 text (expected {self.expected})"
            ) from exc

    def _reject(self, data: bytes) -> ParameterValueError:
        return ParameterValueError(
            f"{self._label()}: value {_show(data)} is not a valid {self.dtype} "
            f"(expected {self.expected})"
        )


_INT_RE = re.compile(r"[+-]?[0-9]+")


class IntParameter(ParameterBase):
    dtype: Literal["int"] = "int"
    default: StrictInt = 0
    expected: ClassVar[str] = "an integer such as 3 or -12"

    def _parse(self, data: bytes) -> int:
        text = self._text(data).strip()
        if not _INT_RE.fullmatch(text):
            raise self._reject(data)
        return int(text)


_FLOAT_RE = re.compile(
    r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity|nan)", re.IGNORECASE
)


class FloatParameter(ParameterBase):
    dtype: Literal["float"] = "float"
    default: Union[StrictInt, float] = 0.0
    expected: ClassVar[str] = "a decimal number such as 0.5 or 1e-3"

    def _parse(self, data: bytes) -> float:
        text = self._text(data).strip()
        if not _FLOAT_RE.fullmatch(text):
            raise self._reject(data)
        return float(text)

    def _encode(self, val: Any) -> bytes:
        value = float(val)
        return (repr(value) if math.isfinite(value) else str(value)).encode("utf8")


class StrParameter(ParameterBase):
    dtype: Literal["str"] = "str"
    default: StrictStr = ""
    expected: ClassVar[str] = "UTF-8 text"

    def _parse(self, data: bytes) -> str:
        return self._text(data)


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class BoolParameter(ParameterBase):
    dtype: Literal["bool"] = "bool"
    default: StrictBool = False
    expected: ClassVar[str] = "true or false (also 1/0, yes/no, on/off)"

    def _parse(self, data: bytes) -> bool:
        text = self._text(data).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise self._reject(data)

    def _encode(self, val: Any) -> bytes:
        # the original's spelling, which every release's from_bytes reads back
        return b"True" if val else b"False"


class BinaryParameter(ParameterBase):
    """Raw bytes, e.g. the content of a poni or mask file uploaded by a control system."""

    dtype: Literal["binary"] = "binary"
    default: StrictBytes = b""
    expected: ClassVar[str] = "any bytes"

    def _encode(self, val: Any) -> bytes:
        return bytes(val)


class FileParameter(BinaryParameter):
    """A whole file's content; kept for payloads written against older releases."""

    dtype: Literal["file"] = "file"  # type: ignore[assignment]


ParameterType = Union[
    IntParameter, FloatParameter, StrParameter, BoolParameter, BinaryParameter, FileParameter
]

_Declaration = Annotated[ParameterType, Field(discriminator="dtype")]

Parameter: TypeAdapter[ParameterType] = TypeAdapter(_Declaration)
"""Validates one declaration from its JSON or dict form (the original's ``Parameter``)."""

ParameterList: TypeAdapter[list[ParameterType]] = TypeAdapter(list[_Declaration])
"""Validates a list of declarations, as ``GET /api/v1/parameters`` lists them (the original's
``ParameterList``)."""


class ParameterDescription(BaseModel):
    """A declaration as it crosses a process boundary (REST, Redis)."""

    parameter: ParameterType = Field(discriminator="dtype")

    @classmethod
    def from_published(cls, item: Mapping[str, Any]) -> ParameterType:
        """The declaration a component published as JSON (``model_dump(mode="json")``).

        Read as JSON, not as Python objects: a binary default travels as a JSON string, which
        the strict ``bytes`` field accepts only from JSON input.
        """
        return cls.model_validate_json(json.dumps({"parameter": dict(item)})).parameter


def describe(classes: Iterable[Any]) -> dict[ParameterName, ParameterType]:
    """Collect the declarations of payload classes; conflicting declarations are an error."""
    found: dict[ParameterName, ParameterType] = {}
    for cls in classes:
        describe_fn = getattr(cls, "describe_parameters", None)
        if describe_fn is None:
            continue
        declared = describe_fn()
        for param in declared or []:
            if not isinstance(param, ParameterBase):
                raise ParameterError(
                    f"{getattr(cls, '__name__', cls)}.describe_parameters() returned "
                    f"{param!r}; expected instances of dranspose.core.parameters classes"
                )
            previous = found.get(param.name)
            if previous is not None and previous.dtype != param.dtype:
                raise ParameterError(
                    f"parameter {param.name!r} is declared twice with different types: "
                    f"{previous.dtype} and {param.dtype}"
                )
            found[param.name] = param  # type: ignore[assignment]
    return found


class ParameterSet(Mapping[ParameterName, WorkParameter]):
    """An immutable snapshot of all parameters, as one event is processed with.

    Changing a value returns a new set, so an event in flight never sees a mix of old and new
    values, and the ``hash`` identifies exactly which values a result was computed with.
    """

    def __init__(
        self,
        descriptions: Mapping[ParameterName, ParameterType],
        values: Mapping[ParameterName, WorkParameter],
    ) -> None:
        self.descriptions = dict(descriptions)
        self._values = dict(values)
        digest = hashlib.sha256()
        for name in sorted(self._values):
            data = self._values[name].data or b""
            digest.update(name.encode("utf8") + b"\0" + str(len(data)).encode() + b"\0" + data)
        self.hash = Digest(digest.hexdigest())

    @classmethod
    def from_raw(
        cls,
        descriptions: Mapping[ParameterName, ParameterType],
        raw: Mapping[str, bytes],
        warn_undeclared: bool = True,
    ) -> ParameterSet:
        """Parse raw values against their declarations; undeclared names keep raw bytes (with a
        warning, unless ``warn_undeclared`` is false: the controller hashing on every read)."""
        values: dict[ParameterName, WorkParameter] = {}
        for name, desc in descriptions.items():
            values[name] = WorkParameter(
                name=name, data=desc.to_bytes(desc.default), value=desc.default
            )
        for raw_name, data in raw.items():
            pname = ParameterName(raw_name)
            declared = descriptions.get(pname)
            if declared is None and warn_undeclared:
                logger.warning(
                    "parameter %r is not declared by the worker or reducer classes; "
                    "it is kept as raw bytes %s",
                    raw_name,
                    _show(bytes(data)),
                )
            if declared is None:
                values[pname] = WorkParameter(name=pname, data=bytes(data), value=bytes(data))
            else:
                values[pname] = WorkParameter(
                    name=pname, data=bytes(data), value=declared.from_bytes(data)
                )
        return cls(descriptions, values)

    def with_data(self, name: str, data: bytes) -> ParameterSet:
        """A new set with one parameter changed. A name no class declares is kept as raw bytes
        (``data`` and ``value``), as the original dranspose kept it: payloads read such values
        (a poni file) with ``"x" in parameters`` and ``parameters["x"].data``."""
        desc = self.descriptions.get(ParameterName(name))
        parse = desc if desc is not None else BinaryParameter(name=ParameterName(name))
        values = dict(self._values)
        values[ParameterName(name)] = WorkParameter(
            name=ParameterName(name), data=bytes(data), value=parse.from_bytes(data)
        )
        return ParameterSet(self.descriptions, values)

    def __getitem__(self, key: ParameterName) -> WorkParameter:
        return self._values[key]

    def __iter__(self) -> Iterator[ParameterName]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v.value!r}" for k, v in self._values.items())
        return f"ParameterSet({shown})"


def _raw_value(value: Any) -> Optional[bytes]:
    """A record's raw value as bytes, or ``None`` when it is no raw value."""
    if isinstance(value, str):
        return value.encode("utf8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, bool) or isinstance(value, (int, float)):
        # A JSON number or boolean written without quotes: its JSON text is the raw value.
        return json.dumps(value).encode("utf8")
    return None


def _raw_from_record(record: Any, where: str) -> tuple[str, bytes]:
    if isinstance(record, BaseModel):  # a WorkParameter, also one pickled by another release
        record = {**(record.__dict__ or {})}
    if not isinstance(record, Mapping) or "name" not in record:
        raise ParameterError(
            f'{where}: expected a record {{"name": ..., "data": ...}}, got {_short(record)}'
        )
    name, data = record["name"], record.get("data")
    if not isinstance(name, str):
        raise ParameterError(f"{where}: 'name' must be a string, got {_short(name)}")
    if data is None and record.get("value") is not None:
        # Records that carry only the typed value, as a WorkParameter can: its text is the raw
        # value, as the parameter classes' to_bytes writes it.
        raw = _raw_value(record["value"])
        if raw is not None:
            return name, raw
    if data is None:
        raise ParameterError(f"{where}: parameter {name!r} has no 'data' (its raw value)")
    raw = _raw_value(data)
    if raw is None:
        raise ParameterError(
            f"{where}: parameter {name!r} has 'data' {_short(data)}; expected a string or bytes "
            f"(the raw value)"
        )
    return name, raw


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _brief(exc: BaseException, limit: int = 100) -> str:
    text = str(exc) or type(exc).__name__
    text = text.splitlines()[0] if text.strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_json(blob: bytes) -> Any:
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not UTF-8 text (byte {blob[exc.start]:#04x} at offset {exc.start})"
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc


def _as_pickle(blob: bytes) -> Any:
    if not blob:
        raise ValueError("the file is empty")
    try:
        return pickle.loads(blob)
    except Exception as exc:  # unpickling runs constructors: anything can fail
        raise ValueError(_brief(exc)) from exc


def _as_cbor(blob: bytes) -> Any:
    if not blob:
        raise ValueError("the file is empty")
    try:
        return cbor2.loads(blob)
    except Exception as exc:
        raise ValueError(_brief(exc)) from exc


PARAMETER_FILE_FORMATS = (("JSON", _as_json), ("pickle", _as_pickle), ("CBOR", _as_cbor))
"""How a parameter file is read, in the order tried (the original dranspose's order): its content,
never its name, decides."""


def _load_records(path: Path, blob: bytes) -> tuple[str, Any]:
    failures = []
    for name, load in PARAMETER_FILE_FORMATS:
        try:
            return name, load(blob)
        except ValueError as exc:
            failures.append(f"{name}: {exc}")
    raise ParameterError(
        f"parameter file {str(path)!r} is not valid JSON, pickle or CBOR "
        f"({'; '.join(failures)}); expected a list of records such as "
        '[{"name": "till_x", "data": "3"}]'
    )


def read_parameter_file(path: Union[str, Path]) -> dict[str, bytes]:
    """Read raw parameter values from a parameter file in JSON, pickle or CBOR, whatever its name.

    The content decides the format, tried in the original dranspose's order: JSON, then pickle,
    then CBOR; the first that decodes is used, so ``params.pkl`` holding CBOR loads. The records
    are ``[{"name": "till_x", "data": "3"}, ...]``: ``data`` is the raw value (a string or bytes;
    a record with only ``value`` uses that value's text); pickles may hold ``WorkParameter``
    objects; a map ``{name: data}`` is read too. A pickle executes code when loaded, so only files
    the user names on the command line are read this way, never network data.
    """
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ParameterError(f"parameter file {str(path)!r}: cannot read ({exc.strerror})") from exc
    kind, records = _load_records(path, blob)
    where = f"parameter file {str(path)!r} ({kind})"
    if isinstance(records, Mapping):
        records = (
            list(records.values())
            if records and all(isinstance(v, (Mapping, BaseModel)) for v in records.values())
            else [{"name": k, "data": v} for k, v in records.items()]
        )
    if not isinstance(records, (list, tuple)):
        raise ParameterError(
            f"{where}: expected a list of parameter records such as "
            f'[{{"name": "till_x", "data": "3"}}], got {type(records).__name__}'
        )
    raw: dict[str, bytes] = {}
    for index, record in enumerate(records):
        name, data = _raw_from_record(record, f"{where}, record {index}")
        if name in raw:
            raise ParameterError(f"{where}: parameter {name!r} appears twice")
        raw[name] = data
    return raw

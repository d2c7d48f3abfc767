"""Parser for PandA position capture read from the TCP data port, and the framing of that stream.

The protocol is a text stream whose sample lines only make sense with the header that announced
the fields, so decoding is stateful: :class:`PositioncapParser` remembers the last header and types
each sample line with it. A worker needs its own parser and must see the start message of each
acquisition before that acquisition's samples.

:func:`split_messages` is the ingester's half: it cuts the byte stream into messages (the header
block, one sample line, the ``END`` line; see :mod:`dranspose.protocols.positioncap.packets`) and is pure, so
an ingester keeps the unconsumed rest and feeds it again with the next bytes it reads. Only the
``ASCII`` format is supported: binary formats are not line based.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable, Literal, Optional, Union

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.frames import frame_bytes
from dranspose.protocols.common.json_header import validate
from dranspose.protocols.common.stream_argument import stream_argument
from dranspose.protocols.positioncap.packets import (
    FIELD_TYPES,
    PositionCapEnd,
    PositionCapField,
    PositionCapStart,
    PositionCapValues,
)

__all__ = [
    "CAPTURE_REQUEST",
    "MessageSplitter",
    "ParseError",
    "PositioncapParser",
    "check_reply",
    "message_kind",
    "split_messages",
]

CAPTURE_REQUEST = b"ASCII SCALED\n"
"""The capture options line to send after connecting: text values, scaled to doubles."""

# A header block starts with a "key:" line (arm_time on recent firmware, missed on older ones);
# "<" starts the XML header some clients request.
_HEADER_START = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*:|<")
_KEY_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):\s*(.*)")
_FIELD_LINE = re.compile(r" (\S+) (\S+) (\S+)(?: scale: (\S+) offset: (\S+) units:(?: (.*))?)? *")
_END_LINE = re.compile(rb"END (\d+) ([^\r\n]+?)\s*")

Kind = Literal["start", "event", "end", "skip"]

_START_KEYS = frozenset(PositionCapStart.model_fields)
_new = object.__new__
_set = object.__setattr__
_VALUE_SET = frozenset({"value"})


def split_messages(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut ``buffer`` (bytes read from the data port) into complete messages and the rest.

    Messages are: a header block, from its first ``key:`` line through the empty line ending it
    (one message, newlines kept); any other line (a sample line, the ``END`` line, the ``OK``
    reply), newline kept. Empty lines between messages carry nothing and are dropped. The rest is
    an incomplete line or header block: prepend it to the next bytes read.
    """
    data = buffer if isinstance(buffer, bytes) else bytes(buffer)
    messages: list[bytes] = []
    pos = 0
    while True:
        eol = data.find(b"\n", pos)
        if eol < 0:
            break
        if _HEADER_START.match(data, pos):
            end = _header_end(data, eol + 1)
            if end < 0:
                break
            messages.append(data[pos:end])
            pos = end
            continue
        if data[pos:eol].strip():
            messages.append(data[pos : eol + 1])
        pos = eol + 1
    return messages, data[pos:]


class MessageSplitter:
    """:func:`split_messages` for a connection: :meth:`feed` takes the bytes as they are read
    and returns the messages they complete; :attr:`rest` holds an incomplete one meanwhile."""

    def __init__(self) -> None:
        self._rest = b""

    @property
    def rest(self) -> bytes:
        return self._rest

    def feed(self, data: bytes) -> list[bytes]:
        messages, self._rest = split_messages(self._rest + data if self._rest else data)
        return messages


def _header_end(data: bytes, pos: int) -> int:
    """Where the header block whose second line starts at ``pos`` ends, or -1 if incomplete."""
    while True:
        eol = data.find(b"\n", pos)
        if eol < 0:
            return -1
        if not data[pos:eol].strip():
            return eol + 1
        pos = eol + 1


def message_kind(message: bytes) -> Kind:
    """What a message from :func:`split_messages` is to an ingester: ``"start"`` (header),
    ``"event"`` (sample line), ``"end"`` (``END`` line) or ``"skip"`` (``OK`` and other chatter).
    """
    if message[:1] == b" ":
        return "event"
    if message.startswith(b"END"):
        return "end"
    if _HEADER_START.match(message):
        return "start"
    return "skip"


def check_reply(line: bytes) -> None:
    """Check the PandA's reply to :data:`CAPTURE_REQUEST`; :class:`ParseError` unless ``OK``."""
    text = line.decode("utf-8", "replace").strip()
    if text == "OK":
        return
    if text.startswith("ERR"):
        raise ParseError(f"PandA data port refused the capture options: {text!r}")
    raise ParseError(f"PandA data port replied {_show(line)}, expected 'OK' or 'ERR <reason>'")


class PositioncapParser:
    """Decodes the messages of one position capture stream, in order.

    :meth:`parse` returns :class:`PositionCapStart` for a header block, and remembers it: the
    arm time in :attr:`arm_time` (naive, UTC), the captured fields in :attr:`fields` (header
    order, each named ``"<field>.<capture>"`` as in the original dranspose). Each
    sample line then becomes :class:`PositionCapValues`, its values typed as the header says; the
    ``END`` line becomes :class:`PositionCapEnd`. A new header replaces the remembered one; ``END``
    keeps it.
    """

    def __init__(self) -> None:
        self.start: Optional[PositionCapStart] = None
        self.arm_time: Optional[datetime] = None
        self.fields: list[PositionCapField] = []
        self._plan: list[tuple[str, PositionCapField, Callable[[bytes], Any]]] = []

    def parse(
        self, data: Optional[StreamData] = None, *, stream_data: Optional[StreamData] = None
    ) -> Union[PositionCapStart, PositionCapValues, PositionCapEnd]:
        """Decode one message (one frame), given as ``data`` (the original dranspose's name, by
        position or keyword) or as the keyword ``stream_data``. Raises :class:`ParseError`
        naming the stream type and the offending line when it is malformed, or when samples
        come before any header."""
        stream = stream_argument(data, stream_data, "PositioncapParser.parse")
        typ = stream.typ
        frames = stream.frames
        if len(frames) != 1:
            raise ParseError(
                f"{typ} stream: {len(frames)} frames; expected exactly one frame holding a "
                f"header block, a sample line or an END line"
            )
        raw = frame_bytes(frames[0], f"{typ} frame 0", "bytes holding a line of text")
        if raw[:1] == b" ":
            return self._values(typ, raw)
        if raw.startswith(b"END"):
            return _end(typ, raw)
        if raw[:1] == b"<":
            raise ParseError(
                f"{typ} header {_show(raw)}: XML headers are not supported; request capture "
                f"without the XML option ({CAPTURE_REQUEST.strip().decode()!r})"
            )
        if _HEADER_START.match(raw):
            return self._header(typ, raw)
        if raw.strip() == b"OK" or raw.startswith(b"ERR"):
            raise ParseError(
                f"{typ} line {_show(raw)} is the data port's reply to the capture options, "
                f"not a capture message; expected a header block, a sample line or an END line"
            )
        raise ParseError(
            f"{typ} line {_show(raw)}: expected a header block ('arm_time: ...'), a sample line "
            f"(values after a leading space) or 'END <samples> <status>'"
        )

    def _header(self, typ: str, raw: bytes) -> PositionCapStart:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"{typ} header {_show(raw)}: not UTF-8 text ({exc})") from exc
        lines = [line.rstrip("\r") for line in text.split("\n")]
        values: dict[str, Any] = {}
        fields: list[PositionCapField] = []
        in_fields = False
        index = 0
        for index, line in enumerate(lines):  # noqa: B007
            if not line.strip():
                break
            if in_fields:
                fields.append(_field(typ, line))
            elif line.strip() == "fields:":
                in_fields = True
            else:
                match = _KEY_LINE.fullmatch(line)
                if match is None:
                    raise ParseError(
                        f"{typ} header line {line!r}: expected 'key: value' or 'fields:'"
                    )
                key, value = match.group(1), match.group(2).strip()
                if value or key not in _START_KEYS:
                    values[key] = value  # an empty known key (hw_time_offset_ns) means unset
        trailing = [line for line in lines[index + 1 :] if line.strip()]
        if trailing:
            raise ParseError(
                f"{typ} header: line {trailing[0]!r} follows the empty line that ends the "
                f"header; expected one header block per message"
            )
        if not in_fields:
            raise ParseError(f"{typ} header {_show(raw)}: no 'fields:' line")
        if not fields:
            raise ParseError(f"{typ} header {_show(raw)}: 'fields:' lists no captured fields")
        keys = [field.name for field in fields]
        duplicate = next((key for key in keys if keys.count(key) > 1), None)
        if duplicate is not None:
            raise ParseError(f"{typ} header: field {duplicate!r} is listed twice")
        values["fields"] = fields
        start = validate(PositionCapStart, values, f"{typ} header", "header", dotted=True)
        if start.format.lower() != "ascii":
            raise ParseError(
                f"{typ} header: format {start.format!r} is not supported, expected 'ASCII' "
                f"(request {CAPTURE_REQUEST.strip().decode()!r})"
            )
        self.start = start
        self.arm_time = start.arm_time
        self.fields = fields
        self._plan = [(field.name, field, _converter(field)) for field in fields]
        return start

    def _values(self, typ: str, raw: bytes) -> PositionCapValues:
        plan = self._plan
        if not plan:
            raise ParseError(
                f"{typ} sample line {_show(raw)} before any header; expected the header block "
                f"announcing the fields first"
            )
        parts = raw.split()
        if len(parts) != len(plan):
            raise ParseError(
                f"{typ} sample line {_show(raw)}: {len(parts)} values, expected {len(plan)} "
                f"({', '.join(key for key, _, _ in plan)})"
            )
        fields = {}
        for (key, field, convert), part in zip(plan, parts):
            try:
                value = convert(part)
            except ValueError as exc:
                text = part.decode("utf-8", "replace")
                raise ParseError(
                    f"{typ} sample line {_show(raw)}: field {key!r} value {text!r} {exc}"
                ) from exc
            fields[key] = _with_value(field, value)
        return PositionCapValues.model_construct(fields=fields)


def _with_value(field: PositionCapField, value: Any) -> PositionCapField:
    """A copy of ``field`` holding ``value``, built as ``model_construct`` does but without
    re-walking the model's fields: three times faster than ``model_copy``, and this runs for
    every value of every sample."""
    copy = _new(PositionCapField)
    _set(copy, "__dict__", {**field.__dict__, "value": value})
    _set(copy, "__pydantic_fields_set__", field.__pydantic_fields_set__ | _VALUE_SET)
    extra = field.__pydantic_extra__
    _set(copy, "__pydantic_extra__", dict(extra) if extra else extra)
    _set(copy, "__pydantic_private__", None)
    return copy


def _field(typ: str, line: str) -> PositionCapField:
    match = _FIELD_LINE.fullmatch(line)
    if match is None:
        raise ParseError(
            f"{typ} header field line {line!r}: expected ' <name> <type> <capture>' optionally "
            f"followed by 'scale: <s> offset: <o> units: <u>'"
        )
    name, ftype, capture, scale, offset, units = match.groups()
    if ftype not in FIELD_TYPES:
        raise ParseError(
            f"{typ} header field line {line!r}: unknown type {ftype!r}; expected one of "
            f"{', '.join(repr(t) for t in FIELD_TYPES)}"
        )
    try:
        scaling = (
            {}
            if scale is None
            else {"scale": float(scale), "offset": float(offset), "units": (units or "").strip()}
        )
    except ValueError as exc:
        raise ParseError(
            f"{typ} header field line {line!r}: scale and offset must be numbers"
        ) from exc
    return PositionCapField(name=f"{name}.{capture}", type=ftype, capture=capture, **scaling)


def _converter(field: PositionCapField) -> Callable[[bytes], Any]:
    _pytype, bounds = FIELD_TYPES[field.type]
    if bounds is None:

        def to_float(text: bytes) -> float:
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"is not a {field.type} number") from None

        return to_float
    low, high = bounds

    def to_int(text: bytes) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"is not a {field.type} integer") from None
        if not low <= value <= high:
            raise ValueError(f"is out of the {field.type} range [{low}, {high}]")
        return value

    return to_int


def _end(typ: str, raw: bytes) -> PositionCapEnd:
    match = _END_LINE.fullmatch(raw)
    if match is None:
        raise ParseError(f"{typ} END line {_show(raw)}: expected 'END <samples> <status>'")
    status = match.group(2).decode("utf-8", "replace")
    return PositionCapEnd(samples=int(match.group(1)), status=status)


def _show(raw: bytes, limit: int = 80) -> str:
    text = repr(raw.decode("utf-8", "replace"))
    return text if len(text) <= limit else text[: limit - 4] + "...'"

"""Packets of PandA position capture as read from the PandA's TCP data port (8889).

The client connects and sends a line of capture options (``ASCII SCALED``); the PandA replies
``OK`` (or ``ERR <reason>``). Then, for every acquisition ("experiment"), it sends, as text:

* a header block: ``key: value`` lines (``arm_time``, ``start_time``, ``hw_time_offset_ns`` on
  recent firmware, ``missed``, ``process``, ``format``), then ``fields:`` followed by one line per
  captured value, each starting with a space: ``<name> <type> <capture>``, plus
  ``scale: <s> offset: <o> units: <u>`` for scaled fields, e.g.
  `` INENC1.VAL double Mean scale: 1 offset: 0 units: mm``. An empty line ends the header.
* one line per captured sample: a space, then the values separated by spaces, in header order;
* ``END <samples> <status>``, e.g. ``END 11 Disarmed``.

One message, and so one ``StreamData`` frame, is one of: the whole header block (empty line
included) -> :class:`PositionCapStart`; one sample line -> :class:`PositionCapValues`; the ``END``
line -> :class:`PositionCapEnd`. The ``OK`` reply is not forwarded.
:func:`dranspose.protocols.positioncap.parser.split_messages` cuts the TCP byte stream into these
messages; :class:`dranspose.protocols.positioncap.parser.PositioncapParser` decodes them, remembering
the header to type the values (``uint32``/``int32``/``int64`` become ``int``, ``double``
``float``).

A captured value is named, and keyed, ``"<field>.<capture>"`` (``"INENC1.VAL.Mean"``), as in the
original dranspose, since one PandA field can be captured several ways:
``packet.fields["INENC1.VAL.Mean"].value``; :attr:`PositionCapField.field` is the bare PandA field.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from dranspose.core.event import StreamData

POSITIONCAP_TYPE = "PCAP_RAW"
"""The stream type ingesters give streams read from the PandA TCP data port. (``"PCAP"`` is the
JSON stream of the PandA Tango device, see :mod:`dranspose.protocols.pcap.packets`.)"""

FIELD_TYPES: dict[str, tuple[type, Optional[tuple[int, int]]]] = {
    "uint32": (int, (0, 2**32 - 1)),
    "int32": (int, (-(2**31), 2**31 - 1)),
    "int64": (int, (-(2**63), 2**63 - 1)),
    "double": (float, None),
}
"""The field types a PandA announces: the Python type of their values and, for integers, the
inclusive range."""


def _number(value: float) -> str:
    """``value`` as the PandA writes numbers: integral floats without ``.0``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def utc_naive(value: Optional[datetime]) -> Optional[datetime]:
    """``value`` as a naive datetime in UTC: an aware one is converted to UTC and loses its zone,
    a naive one is taken to be UTC already. The PandA sends UTC times with a trailing ``Z``."""
    if value is not None and value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, milliseconds unless finer digits are set (naive = UTC)."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
    return value.isoformat(timespec=spec) + "Z"


class PositionCapField(BaseModel):
    """One captured value: ``name`` is ``"<field>.<capture>"`` (``"INENC1.VAL.Mean"``), the PandA
    field and how it is captured (``Value``, ``Mean``, ``Min``, ...), sent as ``type``. That is
    the original dranspose's naming, which payloads rely on (they key values and build numpy
    dtypes by these names, so one field captured twice must give two names).

    ``capture`` is the part after the last dot; it is derived from ``name`` when not given and
    must agree with it when given. Scaled fields have ``scale``, ``offset`` and ``units``. In a
    :class:`PositionCapValues`, ``value`` holds the sample's value.
    """

    model_config = ConfigDict(extra="allow")

    name: str
    type: str
    value: Optional[Union[int, float]] = None
    capture: Optional[str] = None
    scale: Optional[float] = None
    offset: Optional[float] = None
    units: Optional[str] = None

    @model_validator(mode="after")
    def _capture_from_name(self) -> PositionCapField:
        if self.capture is None:
            if "." in self.name:
                self.capture = self.name.rsplit(".", 1)[1]
        elif not self.name.endswith(f".{self.capture}"):
            raise ValueError(
                f"name {self.name!r} does not end with '.{self.capture}' (capture "
                f"{self.capture!r}); name is '<field>.<capture>', e.g. "
                f"'{self.name}.{self.capture}'"
            )
        return self

    @property
    def field(self) -> str:
        """The PandA field alone (``"INENC1.VAL"``): ``name`` without its capture."""
        if not self.capture:
            return self.name
        return self.name[: -len(self.capture) - 1]

    @property
    def key(self) -> str:
        """How :attr:`PositionCapValues.fields` is keyed: ``name``."""
        return self.name

    def parse(self, value: Union[str, bytes]) -> PositionCapField:
        """A copy of this field holding ``value`` (text as a sample line has it), typed as
        ``type`` says: integers for ``uint32``/``int32``/``int64``, floats for ``double``.
        ``ValueError`` names the field when the type is unknown or the text no such number."""
        return self.model_copy(update={"value": convert_value(self, value)})

    def header_line(self) -> str:
        """This field's line in the header block, newline included."""
        if not self.capture:
            raise ValueError(
                f"field {self.name!r} has no capture; its name must be '<field>.<capture>' "
                f"(e.g. 'INENC1.VAL.Mean') to be announced in a header"
            )
        line = f" {self.field} {self.type} {self.capture}"
        if self.scale is not None or self.offset is not None or self.units is not None:
            scale = _number(self.scale if self.scale is not None else 1.0)
            offset = _number(self.offset if self.offset is not None else 0.0)
            line += f" scale: {scale} offset: {offset} units: {self.units or ''}"
        return line + "\n"

    def value_text(self) -> str:
        """``value`` as a sample line writes it; ``ValueError`` names the field when it has no
        value, or one ``type`` cannot hold."""
        value = self.value
        if value is None:
            raise ValueError(f"field {self.name!r} has no value; a sample line needs every value")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(
                f"field {self.name!r} has value {value!r}; a sample line needs a number"
            )
        if isinstance(value, numbers.Integral):
            text = str(int(value))
        elif self.type in FIELD_TYPES and FIELD_TYPES[self.type][0] is int:
            raise ValueError(
                f"field {self.name!r} is {self.type} but its value {value!r} is no integer"
            )
        else:
            text = repr(float(value))
        convert_value(self, text)  # the range of an integer type
        return text


def convert_value(field: PositionCapField, text: Union[str, bytes]) -> Union[int, float]:
    """``text`` as the number ``field.type`` makes of it; ``ValueError`` names the field and
    says why when the type is unknown, the text no number of it or out of its range."""
    if field.type not in FIELD_TYPES:
        raise ValueError(
            f"field {field.name!r} has unknown type {field.type!r}; expected one of "
            f"{', '.join(repr(t) for t in FIELD_TYPES)}"
        )
    pytype, bounds = FIELD_TYPES[field.type]
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    try:
        value = pytype(text)
    except (ValueError, TypeError):
        kind = "integer" if bounds is not None else "number"
        raise ValueError(
            f"field {field.name!r} value {shown!r} is not a {field.type} {kind}"
        ) from None
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise ValueError(
            f"field {field.name!r} value {shown!r} is out of the {field.type} range "
            f"[{bounds[0]}, {bounds[1]}]"
        )
    return value


def _described(fields: Sequence[PositionCapField]) -> list[tuple[Any, ...]]:
    """What a header says of ``fields``: name, type and scaling (not values)."""
    return [(f.name, f.type, f.scale, f.offset, f.units) for f in fields]


class PositionCapBase(BaseModel):
    """Base of the packets; unknown fields are kept as extras."""

    model_config = ConfigDict(extra="allow")

    def message(self) -> bytes:
        """The bytes the PandA sends for this packet."""
        raise NotImplementedError

    def to_stream_data(self, *, typ: str = POSITIONCAP_TYPE) -> StreamData:
        """The frame an ingester would forward for this packet."""
        return StreamData(typ=typ, frames=[self.message()])


class PositionCapStart(PositionCapBase):
    """Start of an acquisition: the header block.

    ``arm_time`` is when the PandA was armed (``None`` on firmware that does not send it),
    ``start_time`` when it started capturing; both are naive datetimes in UTC, as the original
    dranspose gives them: the PandA's trailing ``Z`` is dropped and a time with another offset is
    converted to UTC, so ``arm_time + timedelta(seconds=ts)`` and ``isoformat()`` work as payloads
    written for the original expect.
    ``fields`` lists the captured values in the order every sample line holds them; their
    ``value`` is ``None``. Unknown header keys are kept as string extras.
    """

    kind: Literal["start"] = "start"
    arm_time: Optional[datetime] = None
    start_time: Optional[datetime] = None
    hw_time_offset_ns: Optional[int] = None
    missed: int = 0
    process: str = "Scaled"
    format: str = "ASCII"
    sample_bytes: Optional[int] = None
    fields: list[PositionCapField] = []

    @field_validator("arm_time", "start_time")
    @classmethod
    def _in_utc_without_zone(cls, value: Optional[datetime]) -> Optional[datetime]:
        return utc_naive(value)

    def to_stream_data(
        self, fields: Optional[Sequence[PositionCapField]] = None, *, typ: str = POSITIONCAP_TYPE
    ) -> StreamData:
        """The header block's frame. ``fields`` are the captured fields to announce, as the
        original dranspose took them (its start packet held only ``arm_time``); without them
        :attr:`fields` are announced. Given both, they must be the same fields."""
        if fields is None:
            return super().to_stream_data(typ=typ)
        given = [PositionCapField.model_validate(field) for field in fields]
        if self.fields and _described(self.fields) != _described(given):
            raise ValueError(
                f"to_stream_data got fields {[f.name for f in given]} but this start already "
                f"lists {[f.name for f in self.fields]}; pass the fields once"
            )
        return self.model_copy(update={"fields": given}).to_stream_data(typ=typ)

    def message(self) -> bytes:
        lines = []
        for key in ("arm_time", "start_time"):
            value = getattr(self, key)
            if value is not None:
                lines.append(f"{key}: {_timestamp(value)}\n")
        if self.hw_time_offset_ns is not None:
            lines.append(f"hw_time_offset_ns: {self.hw_time_offset_ns}\n")
        lines.append(f"missed: {self.missed}\nprocess: {self.process}\nformat: {self.format}\n")
        if self.sample_bytes is not None:
            lines.append(f"sample_bytes: {self.sample_bytes}\n")
        for key, value in (self.model_extra or {}).items():
            lines.append(f"{key}: {value}\n")
        lines.append("fields:\n")
        lines.extend(field.header_line() for field in self.fields)
        lines.append("\n")
        return "".join(lines).encode()


class PositionCapValues(PositionCapBase):
    """One captured sample: every field of the header with its ``value``, by ``"name.capture"``
    key, in header order."""

    kind: Literal["values"] = "values"
    fields: dict[str, PositionCapField] = {}

    def as_dict(self) -> dict[str, Union[int, float, None]]:
        """The values alone, by key."""
        return {key: field.value for key, field in self.fields.items()}

    def message(self) -> bytes:
        for key, field in self.fields.items():
            if key != field.name:
                raise ValueError(f"field {field.name!r} is keyed {key!r}; key it by its name")
        parts = [field.value_text() for field in self.fields.values()]
        return (" " + " ".join(parts) + "\n").encode()


class PositionCapEnd(PositionCapBase):
    """End of an acquisition: ``samples`` were sent; ``status`` is ``Ok``, ``Disarmed``,
    ``Early disconnect``, ``Data overrun``, ..."""

    kind: Literal["end"] = "end"
    samples: int = 0
    status: str = "Ok"

    def message(self) -> bytes:
        return f"END {self.samples} {self.status}\n".encode()


def _packet_kind(value: Any) -> Optional[str]:
    """Which packet ``value`` is: its ``kind``; for the original dranspose's dumps, which have
    none, what the original's union makes of them: a start when it has ``arm_time``, else values
    (whose fields all default, so the original reads even its own END dump, ``{}``, as values)."""
    if isinstance(value, PositionCapBase):
        return getattr(value, "kind", None)
    if not isinstance(value, dict):
        return None
    if "kind" in value:
        kind = value["kind"]
        return kind if isinstance(kind, str) else None
    return "start" if "arm_time" in value else "values"


PositionCapPacketType = Annotated[
    Union[
        Annotated[PositionCapStart, Tag("start")],
        Annotated[PositionCapValues, Tag("values")],
        Annotated[PositionCapEnd, Tag("end")],
    ],
    Discriminator(_packet_kind),
]
"""Any position capture packet, told apart by ``kind`` (or, untagged, by its fields)."""

PositionCapPacketAdapter: TypeAdapter[
    Union[PositionCapStart, PositionCapValues, PositionCapEnd]
] = TypeAdapter(PositionCapPacketType)

PositionCapPacket = PositionCapPacketAdapter
"""Validates any packet of the protocol (``PositionCapPacket.validate_json(...)``), as in
earlier releases; ``PositionCapPacketType`` is the union for annotations."""
"""Validates a mapping (with a ``kind``, or the original's untagged dump) into the matching
packet."""


__all__ = [
    "FIELD_TYPES",
    "POSITIONCAP_TYPE",
    "PositionCapBase",
    "PositionCapEnd",
    "PositionCapField",
    "PositionCapPacket",
    "PositionCapPacketAdapter",
    "PositionCapPacketType",
    "PositionCapStart",
    "PositionCapValues",
    "StreamData",
    "convert_value",
    "utc_naive",
]

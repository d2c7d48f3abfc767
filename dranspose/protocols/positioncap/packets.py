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

A captured value is keyed ``"<name>.<capture>"`` (``"INENC1.VAL.Mean"``), since one PandA field
can be captured several ways: ``packet.fields["INENC1.VAL.Mean"].value``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

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
    """One captured value: PandA field ``name`` captured as ``capture`` (``Value``, ``Mean``,
    ``Min``, ...), sent as ``type``. Scaled fields have ``scale``, ``offset`` and ``units``.
    In a :class:`PositionCapValues`, ``value`` holds the sample's value."""

    model_config = ConfigDict(extra="allow")

    name: str
    type: str
    capture: str
    scale: Optional[float] = None
    offset: Optional[float] = None
    units: Optional[str] = None
    value: Optional[Union[int, float]] = None

    @property
    def key(self) -> str:
        """``"<name>.<capture>"``, how :attr:`PositionCapValues.fields` is keyed."""
        return f"{self.name}.{self.capture}"

    def header_line(self) -> str:
        """This field's line in the header block, newline included."""
        line = f" {self.name} {self.type} {self.capture}"
        if self.scale is not None or self.offset is not None or self.units is not None:
            scale = _number(self.scale if self.scale is not None else 1.0)
            offset = _number(self.offset if self.offset is not None else 0.0)
            line += f" scale: {scale} offset: {offset} units: {self.units or ''}"
        return line + "\n"


class PositionCapBase(BaseModel):
    """Base of the packets; unknown fields are kept as extras."""

    model_config = ConfigDict(extra="allow")

    def message(self) -> bytes:
        """The bytes the PandA sends for this packet."""
        raise NotImplementedError

    def to_stream_data(self, typ: str = POSITIONCAP_TYPE) -> StreamData:
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
        parts = []
        for key, field in self.fields.items():
            value = field.value
            if value is None:
                raise ValueError(f"field {key!r} has no value; a sample line needs every value")
            parts.append(str(value) if isinstance(value, int) else repr(float(value)))
        return (" " + " ".join(parts) + "\n").encode()


class PositionCapEnd(PositionCapBase):
    """End of an acquisition: ``samples`` were sent; ``status`` is ``Ok``, ``Disarmed``,
    ``Early disconnect``, ``Data overrun``, ..."""

    kind: Literal["end"] = "end"
    samples: int = 0
    status: str = "Ok"

    def message(self) -> bytes:
        return f"END {self.samples} {self.status}\n".encode()


PositionCapPacketType = Annotated[
    Union[PositionCapStart, PositionCapValues, PositionCapEnd], Field(discriminator="kind")
]
"""Any position capture packet, told apart by ``kind``."""

PositionCapPacketAdapter: TypeAdapter[
    Union[PositionCapStart, PositionCapValues, PositionCapEnd]
] = TypeAdapter(PositionCapPacketType)

PositionCapPacket = PositionCapPacketAdapter
"""Validates any packet of the protocol (``PositionCapPacket.validate_json(...)``), as in
earlier releases; ``PositionCapPacketType`` is the union for annotations."""
"""Validates a mapping with a ``kind`` into the matching packet."""


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
    "utc_naive",
]

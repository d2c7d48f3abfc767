"""Packets of a Sardana scan as its HTTP recorder posts them.

During a scan, Sardana's MacroServer runs recorders. One of them POSTs each record it gets as a
JSON object to an HTTP ingester, one request per record:

* ``/v1/data_desc`` at scan start: the scan's description (:class:`SardanaDataDescription`):
  ``serialno``, ``title``, where the scan is saved (``scandir``, ``scanfile``), the moveables
  scanned (``ref_moveables``), the ``counters`` and one ``column_desc`` entry per recorded column;
* ``/v1/record_data`` for each scan point (:class:`SardanaRecordData`): one value per column, keyed
  by the column's ``name`` (``point_nb``, ``timestamp``, motor and counter names);
* ``/v1/record_end`` at scan end (:class:`SardanaRecordEnd`): an empty object, or ``endtime`` and
  ``deadtime``.

The posted bodies do not say which of these they are; the endpoint does. An ingester forwards each
as one frame of JSON and should add a ``"type"`` key naming the model (:data:`SARDANA_ENDPOINTS`
maps endpoint to type; ``to_stream_data`` writes it). :func:`dranspose.protocols.sardana.parser.parse`
also accepts untagged bodies and tells them apart by their keys.

Column values are not known in advance, so they are extra fields of :class:`SardanaRecordData`:
``getattr(packet, "dummy_mot_01")`` or ``packet.columns["dummy_mot_01"]``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from dranspose.core.event import StreamData

SARDANA_TYPE = "sardana"
"""The stream type ingesters give Sardana streams."""

SARDANA_ENDPOINTS: dict[str, str] = {
    "data_desc": "DataDescription",
    "record_data": "RecordData",
    "record_end": "RecordEnd",
}
"""The ``type`` of the packet posted to each recorder endpoint (``/v1/<endpoint>``). Sardana also
posts ``custom_data``, which is not a scan record and is not forwarded."""


class SardanaBase(BaseModel):
    """Fields every Sardana packet has; unknown fields are kept as extras."""

    model_config = ConfigDict(extra="allow")

    def body_frame(self) -> bytes:
        """The JSON frame of this packet, ``type`` included."""
        return self.model_dump_json().encode()

    def to_stream_data(self, typ: str = SARDANA_TYPE) -> StreamData:
        """The frame an ingester would forward for this packet."""
        return StreamData(typ=typ, frames=[self.body_frame()])


class SardanaColumnDesc(BaseModel):
    """One recorded column: ``name`` keys its values in each record, ``label`` is for display.

    Motor columns carry extras such as ``min_value``, ``max_value`` and ``is_reference``.
    """

    model_config = ConfigDict(extra="allow")

    name: str
    label: str = ""
    dtype: str = "float64"
    shape: list[int] = []


class SardanaDataDescription(SardanaBase):
    """Start of a scan.

    ``scanfile`` is always a list (Sardana's ``ScanFile`` may be one name or several); ``scandir``
    is ``None`` when the scan is not saved. ``column_desc`` defaults to empty because the
    original dranspose did not require it (Sardana always sends it).
    """

    type: Literal["DataDescription"] = "DataDescription"
    serialno: int
    title: str
    column_desc: list[SardanaColumnDesc] = []
    ref_moveables: list[str] = []
    counters: list[str] = []
    scandir: Optional[str] = None
    scanfile: list[str] = []
    estimatedtime: Optional[float] = None
    total_scan_intervals: Optional[int] = None
    starttime: Optional[str] = None

    @field_validator("scanfile", mode="before")
    @classmethod
    def _scanfile_as_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return value

    @property
    def column_names(self) -> list[str]:
        """The ``name`` of every column, in recording order."""
        return [column.name for column in self.column_desc]

    def column(self, name: str) -> SardanaColumnDesc:
        """The description of the column called ``name``; ``KeyError`` if there is none."""
        for column in self.column_desc:
            if column.name == name:
                return column
        raise KeyError(f"no column {name!r}; columns are {self.column_names}")


class SardanaRecordData(SardanaBase):
    """One scan point: ``point_nb`` counts from 0, other columns are extras by column name.

    Sardana always sends ``point_nb``; it is ``None`` only for a record built without it, which
    the original dranspose allowed (it knew ``point_nb`` only as an extra)."""

    type: Literal["RecordData"] = "RecordData"
    point_nb: Optional[int] = None
    timestamp: Optional[float] = None

    @model_validator(mode="after")
    def _a_point_or_a_time(self) -> SardanaRecordData:
        # the original required timestamp, we point_nb; a record with neither says nothing
        if self.point_nb is None and self.timestamp is None:
            raise ValueError("a record needs point_nb or timestamp; it has neither")
        return self

    @property
    def columns(self) -> dict[str, Any]:
        """Every column value of this point by name, ``point_nb`` and ``timestamp`` included
        when the record holds them."""
        values: dict[str, Any] = {}
        if "point_nb" in self.model_fields_set:
            values["point_nb"] = self.point_nb
        if "timestamp" in self.model_fields_set:
            values["timestamp"] = self.timestamp
        values.update(self.model_extra or {})
        return values


class SardanaRecordEnd(SardanaBase):
    """End of a scan; ``endtime`` and ``deadtime`` are kept as extras when sent."""

    type: Literal["RecordEnd"] = "RecordEnd"


SardanaPacketType = Annotated[
    Union[SardanaDataDescription, SardanaRecordData, SardanaRecordEnd],
    Field(discriminator="type"),
]
"""Any Sardana packet, told apart by ``type``."""

SardanaPacketAdapter: TypeAdapter[
    Union[SardanaDataDescription, SardanaRecordData, SardanaRecordEnd]
] = TypeAdapter(SardanaPacketType)

SardanaPacket = SardanaPacketAdapter
"""Validates any packet of the protocol (``SardanaPacket.validate_json(...)``), as in
earlier releases; ``SardanaPacketType`` is the union for annotations."""
"""Validates a tagged mapping or JSON bytes into the matching packet."""

__all__ = [
    "SARDANA_ENDPOINTS",
    "SARDANA_TYPE",
    "SardanaBase",
    "SardanaColumnDesc",
    "SardanaDataDescription",
    "SardanaPacket",
    "SardanaPacketAdapter",
    "SardanaPacketType",
    "SardanaRecordData",
    "SardanaRecordEnd",
]

"""Packets of PandA position capture ("pcap") as published over ZMQ by the PandA Tango device.

Every upstream message is a single ZMQ frame holding one JSON object; its ``message_type`` says
what it is:

* ``"series-start"``: the PandA was armed (:class:`PCAPStart`), with the ``arm_time``;
* ``"data"``: a block of captured rows (:class:`PCAPData`); every captured field is a top-level
  key (``"energy"``, ``"INENC3.VAL.Mean"``, ...) holding a JSON list with one value per row, and
  ``frame_number`` is the index of the block's first row in the series;
* ``"series-end"``: the series is over (:class:`PCAPEnd`).

Field names are chosen on the PandA and are not known in advance, so they are kept as extra
fields of the model. On :class:`PCAPData` every list-valued extra is turned into a 1-D numpy
array when the model is built (floats become ``float64``, integers ``int64``), and all of them
must have the same length; :attr:`PCAPData.fields` gathers them. Parsing received frames is done
by :func:`dranspose.protocols.pcap.parser.parse`; ``to_stream_data`` builds the frames for synthetic
sources and tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from dranspose.core.event import StreamData
from dranspose.protocols.common.json_header import short as _short

PCAP_TYPE = "PCAP"
"""The stream type ingesters give PandA position capture streams."""

_NUMERIC_KINDS = frozenset("biuf")


def as_column(name: str, value: Any) -> np.ndarray:
    """One captured field as a 1-D numeric array; ``ValueError`` says why it cannot be one.

    JSON lists become new arrays of the dtype numpy infers (``float64`` for floats, ``int64``
    for integers); arrays are checked and returned as they are.
    """
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.array(value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"field {name!r} is not a flat list of numbers ({exc})") from exc
    if array.ndim != 1:
        raise ValueError(
            f"field {name!r} has shape {list(array.shape)}, expected a flat list of numbers "
            f"(one per captured row)"
        )
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(
            f"field {name!r} holds {_short(value if isinstance(value, list) else array)}, "
            f"expected numbers only"
        )
    return array


class PCAPBase(BaseModel):
    """Fields every pcap message has; unknown fields are kept as extras."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    message_id: int
    version: Literal[1]

    def message_frame(self) -> bytes:
        """The JSON frame of this message, as the PandA device sends it."""
        return self.model_dump_json().encode()

    def to_stream_data(self, typ: str = PCAP_TYPE) -> StreamData:
        """The frames an ingester would forward for this message."""
        return StreamData(typ=typ, frames=[self.message_frame()])


class PCAPStart(PCAPBase):
    """Start of a series: the PandA was armed at ``arm_time``."""

    message_type: Literal["series-start"]
    arm_time: datetime


class PCAPData(PCAPBase):
    """A block of captured rows: each captured field is an extra holding a 1-D numpy array.

    Names are the PandA's (``packet.model_extra["INENC3.VAL.Mean"]``, or ``packet.energy`` when
    the name is an identifier); :attr:`fields` collects them all. ``frame_number`` is the series
    index of the first row.
    """

    message_type: Literal["data"]
    frame_number: int

    @model_validator(mode="before")
    @classmethod
    def _arrays_from_lists(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        known = cls.model_fields
        columns: dict[str, np.ndarray] = {}
        for key, value in data.items():
            if key not in known and isinstance(value, (list, np.ndarray)):
                columns[key] = as_column(key, value)
        if not columns:
            return data
        lengths = {len(array) for array in columns.values()}
        if len(lengths) > 1:
            listed = ", ".join(f"{key!r}: {len(array)}" for key, array in columns.items())
            raise ValueError(
                f"captured fields have different numbers of rows ({listed}); expected one "
                f"value per row in every field"
            )
        converted = dict(data)
        converted.update(columns)
        return converted

    @property
    def fields(self) -> dict[str, np.ndarray]:
        """The captured fields, by PandA name, in the order they were sent."""
        return {k: v for k, v in (self.model_extra or {}).items() if isinstance(v, np.ndarray)}

    @property
    def rows(self) -> int:
        """How many rows this block holds (0 if it holds no fields)."""
        for array in self.fields.values():
            return len(array)
        return 0

    @classmethod
    def from_fields(
        cls,
        fields: Mapping[str, Any],
        *,
        message_id: int,
        frame_number: int,
        **extra: Any,
    ) -> PCAPData:
        """A data message holding ``fields`` (name to 1-D array or list of numbers)."""
        values = {name: np.asarray(column) for name, column in fields.items()}
        return cls(
            message_id=message_id,
            version=1,
            message_type="data",
            frame_number=frame_number,
            **extra,
            **values,
        )

    def message_frame(self) -> bytes:
        """The JSON frame of this message, captured fields written as JSON lists."""
        arrays = self.fields
        if not arrays:
            return super().message_frame()
        plain = self.model_dump(mode="json", exclude=set(arrays))
        keys = [*type(self).model_fields, *(self.model_extra or {})]
        body = {k: arrays[k].tolist() if k in arrays else plain[k] for k in keys}
        return json.dumps(body, separators=(",", ":")).encode()


class PCAPEnd(PCAPBase):
    """End of a series."""

    message_type: Literal["series-end"]


PCAPPacketType = Annotated[Union[PCAPStart, PCAPData, PCAPEnd], Field(discriminator="message_type")]
"""Any pcap message, told apart by ``message_type``."""

PCAPPacketAdapter: TypeAdapter[Union[PCAPStart, PCAPData, PCAPEnd]] = TypeAdapter(PCAPPacketType)

PCAPPacket = PCAPPacketAdapter
"""Validates any PCAP packet: ``PCAPPacket.validate_json(...)`` (the name payloads
written for earlier releases use; a TypeAdapter there too)."""
"""Validates a mapping or JSON bytes into the matching packet."""

__all__ = [
    "PCAP_TYPE",
    "PCAPBase",
    "PCAPData",
    "PCAPEnd",
    "PCAPPacket",
    "PCAPPacketAdapter",
    "PCAPPacketType",
    "PCAPStart",
    "as_column",
]

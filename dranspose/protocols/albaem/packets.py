"""Packets of the AlbaEM electrometer stream, as published over ZMQ.

Every upstream message is a single ZMQ frame holding one JSON object; its ``message_type`` says
what it is:

* ``"series-start"``: the acquisition was started (:class:`AlbaemStart`);
* ``"data"``: one reading (:class:`AlbaemData`): ``frame_number`` counts readings from 0,
  ``timestamp`` is the device's time in seconds, ``acquisition_timestamp`` the wall-clock time
  in nanoseconds since the Unix epoch, and ``channel1`` ... ``channelN`` hold one number per
  channel (the measured currents);
* ``"series-end"``: the acquisition is over (:class:`AlbaemEnd`); the device reports buffer
  overflows in ``detector_specific``.

The number of channels depends on the device, so channels are kept as extra fields; they are
checked to be numbers and stored as ``float``, and :attr:`AlbaemData.channels` gathers them.
Parsing received frames is done by :func:`dranspose.protocols.albaem.parser.parse`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from dranspose.core.event import StreamData
from dranspose.protocols.common.json_header import short as _short

ALBAEM_TYPE = "albaem"
"""The stream type ingesters give AlbaEM streams."""

_CHANNEL = re.compile(r"channel([0-9]+)")


class AlbaemBase(BaseModel):
    """Fields every AlbaEM message has; unknown fields are kept as extras."""

    model_config = ConfigDict(extra="allow")

    message_id: int
    version: Literal[1]

    def message_frame(self) -> bytes:
        """The JSON frame of this message, as the device sends it."""
        return self.model_dump_json().encode()

    def to_stream_data(self, typ: str = ALBAEM_TYPE) -> StreamData:
        """The frames an ingester would forward for this message."""
        return StreamData(typ=typ, frames=[self.message_frame()])


class AlbaemStart(AlbaemBase):
    """Start of an acquisition."""

    message_type: Literal["series-start"]


class AlbaemData(AlbaemBase):
    """One reading of all channels; ``channel1`` ... ``channelN`` are extras holding floats."""

    message_type: Literal["data"]
    frame_number: int
    timestamp: float
    acquisition_timestamp: int

    @model_validator(mode="before")
    @classmethod
    def _channels_are_numbers(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        converted: dict[str, float] = {}
        for key, value in data.items():
            if type(value) is not float and _CHANNEL.fullmatch(key):
                if type(value) is not int:
                    raise ValueError(f"{key} must be a number, got {_short(value)}")
                converted[key] = float(value)
        if not converted:
            return data
        data = dict(data)
        data.update(converted)
        return data

    @property
    def channels(self) -> dict[str, float]:
        """The channel readings by name (``"channel1"``, ...), in channel number order."""
        found = [
            (int(match.group(1)), key, value)
            for key, value in (self.model_extra or {}).items()
            if (match := _CHANNEL.fullmatch(key))
        ]
        return {key: value for _, key, value in sorted(found)}


class AlbaemEnd(AlbaemBase):
    """End of an acquisition."""

    message_type: Literal["series-end"]


AlbaemPacketType = Annotated[
    Union[AlbaemStart, AlbaemData, AlbaemEnd], Field(discriminator="message_type")
]
"""Any AlbaEM message, told apart by ``message_type``."""

AlbaemPacketAdapter: TypeAdapter[Union[AlbaemStart, AlbaemData, AlbaemEnd]] = TypeAdapter(
    AlbaemPacketType
)

AlbaemPacket = AlbaemPacketAdapter
"""Validates any Albaem packet: ``AlbaemPacket.validate_json(...)`` (the name payloads
written for earlier releases use; a TypeAdapter there too)."""
"""Validates a mapping or JSON bytes into the matching packet."""

__all__ = [
    "ALBAEM_TYPE",
    "AlbaemBase",
    "AlbaemData",
    "AlbaemEnd",
    "AlbaemPacket",
    "AlbaemPacketAdapter",
    "AlbaemPacketType",
    "AlbaemStart",
]

"""A parser for a small, made-up protocol: the example of docs/howto-protocol-parser.md.

A temperature controller publishes one JSON object per ZMQ message, and its ``kind`` says what
it is:

* ``{"kind": "start", "run": 7, "sensors": ["cold head", "sample"]}`` opens a run;
* ``{"kind": "reading", "index": 0, "celsius": [-180.2, 21.5]}`` one reading per sensor;
* ``{"kind": "stop", "readings": 120}`` closes the run.

In the dranspose source the three parts live apart: the packet models in
``dranspose/data/thermo.py``, ``parse`` in ``dranspose/middlewares/thermo.py``, the ingester's
:class:`~dranspose.protocols.registry.Protocol` in the registry of ``dranspose/protocols/registry.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from dranspose.event import StreamData
from dranspose.middlewares.errors import ParseError
from dranspose.protocols.registry import Protocol, json_htype_classifier

THERMO_TYPE = "THERMO"
"""The ``StreamData.typ`` ingesters give this protocol's streams."""


# -- packets: what the payload gets -------------------------------------------------------------
# --8<-- [start:packets]


class ThermoBase(BaseModel):
    """Unknown fields are kept: a firmware update that adds one must not break the parser."""

    model_config = ConfigDict(extra="allow")


class ThermoStart(ThermoBase):
    kind: Literal["start"]
    run: int
    sensors: list[str]


class ThermoReading(ThermoBase):
    kind: Literal["reading"]
    index: int = Field(ge=0)
    celsius: list[float]

    @model_validator(mode="after")
    def _above_absolute_zero(self) -> ThermoReading:
        for value in self.celsius:
            if value < -273.15:
                raise ValueError(f"{value} °C is below absolute zero")
        return self


class ThermoStop(ThermoBase):
    kind: Literal["stop"]
    readings: int


ThermoPacketType = Annotated[
    Union[ThermoStart, ThermoReading, ThermoStop], Field(discriminator="kind")
]
ThermoPacket: TypeAdapter[Union[ThermoStart, ThermoReading, ThermoStop]] = TypeAdapter(
    ThermoPacketType
)
# --8<-- [end:packets]


# -- the parser: StreamData -> packet, or a ParseError that says what is wrong ---------------
# --8<-- [start:parse]


def parse(stream_data: StreamData) -> Union[ThermoStart, ThermoReading, ThermoStop]:
    """Decode one message; raises :class:`ParseError` naming the stream type and the fault."""
    frames = stream_data.frames
    if len(frames) != 1:
        raise ParseError(
            f"{stream_data.typ} stream: {len(frames)} frames; expected exactly one "
            "frame holding a JSON object"
        )
    frame = frames[0]
    raw = frame if isinstance(frame, bytes) else frame.bytes  # bytes or zmq.Frame
    try:
        return ThermoPacket.validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        raise ParseError(f"{stream_data.typ} frame 0: {problems}") from exc


# --8<-- [end:parse]


# -- the ingester's view: which message starts, ends or belongs to a run ------------------------
# --8<-- [start:protocol]

PROTOCOL = Protocol(
    name="thermo",
    typ=THERMO_TYPE,
    socket="sub",
    classify=json_htype_classifier("start", "stop", key="kind"),
    description="temperature controller: start, readings, stop",
)
# --8<-- [end:protocol]

"""The data a payload receives and returns: streams, events, results.

These are the public payload-facing types. They are pure data (pydantic models, no I/O); hot paths
build them with ``model_construct`` to skip validation of frames that were already checked.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Optional, Sized, Union

import zmq
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from dranspose.core.construct import trusted
from dranspose.core.protocol import Digest, EventNumber, StreamName, WorkerName

Frame = Union[bytes, zmq.Frame]
"""One frame of a stream, as a payload gets it: ``bytes`` for small frames, a ``zmq.Frame`` (its
buffer not copied) for large ones. The one frame type of the data plane and the payload API."""


def frames_nbytes(frames: Iterable[Sized]) -> int:
    """The bytes of these frames: every place that sizes frames (the ingester's counters and
    kept frames, the worker's byte budget) asks here. ``len`` of a ``bytes``, a ``zmq.Frame`` or
    a byte-format ``memoryview`` is its byte count (``sum(map(len, ...))`` runs in C)."""
    return sum(map(len, frames))


class StreamData(BaseModel):
    """All frames one stream contributed to one event (one upstream multipart message)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    typ: str
    frames: list[Frame]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def length(self) -> int:
        return len(self.frames)

    def frame_bytes(self) -> list[bytes]:
        """The frames as ``bytes`` (copies ``zmq.Frame`` payloads, leaves ``bytes`` as they are)."""
        return [f.bytes if isinstance(f, zmq.Frame) else bytes(f) for f in self.frames]

    def get_bytes(self) -> StreamData:
        """A copy whose frames are ``bytes``, detached from ZeroMQ's buffers (the original's name;
        keep one to hold on to a frame after the event was processed)."""
        frames: list[Frame] = list(self.frame_bytes())
        return StreamData.model_construct(typ=self.typ, frames=frames)


class InternalWorkerMessage(BaseModel):
    """One ingester's part of an event: the streams it read for ``event_number``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    event_number: EventNumber
    streams: dict[StreamName, StreamData] = {}
    created_at: Optional[float] = None
    """When the ingester read it, as UNIX time; a ``datetime`` (what the original's releases
    stored) is accepted and converted, a naive one taken as UTC."""

    @field_validator("created_at", mode="before")
    @classmethod
    def _unix_time(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            return value.timestamp()
        return value

    def get_all_frames(self) -> list[Frame]:
        """Every frame of every stream of this part, in stream order."""
        return [frame for stream in self.streams.values() for frame in stream.frames]


class DuplicateStreamError(ValueError):
    """Two partial events claim the same stream for the same event."""


class EventData(BaseModel):
    """A full event: every stream's frames for one event number, as ``process_event`` gets it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    event_number: EventNumber
    streams: dict[StreamName, StreamData]

    @classmethod
    def from_internals(cls, msgs: Iterable[InternalWorkerMessage]) -> EventData:
        """Assemble the partial events of one event number into a full event."""
        parts = list(msgs)
        if not parts:
            raise ValueError("cannot build an event from zero partial events")
        number = parts[0].event_number
        streams: dict[StreamName, StreamData] = {}
        for part in parts:
            if part.event_number != number:
                raise ValueError(
                    f"partial events of different events cannot form one event: "
                    f"{number} and {part.event_number}"
                )
            for name, data in part.streams.items():
                if name in streams:
                    raise DuplicateStreamError(f"event {number}: stream {name!r} arrived twice")
                streams[name] = data
        if cls is EventData:  # the per-event path of replay: no field walk
            return trusted(EventData, {"event_number": number, "streams": streams})
        return cls.model_construct(event_number=number, streams=streams)


class ResultData(BaseModel):
    """What the reducer's ``process_result`` gets: a worker's return value and its provenance."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    event_number: EventNumber
    worker: WorkerName
    parameters_hash: Optional[Digest] = None
    payload: Any = None
    redelivered: bool = Field(False, repr=False)  # keeps the repr the tutorial shows
    """True when the worker that first had this event died and another one processed it
    (``--retry-lost``): the first result may have reached the reducer too."""

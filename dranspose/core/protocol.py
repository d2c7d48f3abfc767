"""Identifier types and small records shared by every component.

Payloads import the id types from here (``from dranspose.core.protocol import EventNumber``), so the
names are part of the public contract. Everything here is plain data: no I/O.

The original dranspose 0.2.0's ``dranspose.protocol`` models (the component states its payloads
receive as ``state``, its ``EnsembleState`` that control clients parse ``GET /api/v1/config``
into, its load records) are here with the original's fields and defaults, so code written
against the original constructs and reads them unchanged; where a model of ours is richer, the
original's fields sit alongside ours. Ours fill their fields with what we know (docs/payload-api.md, "Compatibility").
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Iterable, Literal, NewType, Optional, Union

from pydantic import UUID4, BaseModel, ConfigDict, Field, UrlConstraints
from pydantic_core import Url

StreamName = NewType("StreamName", str)
ScanId = NewType("ScanId", str)
"""A scan's id (hex of a UUID4, set by the controller when a trigger map is applied)."""
EventNumber = NewType("EventNumber", int)
WorkerName = NewType("WorkerName", str)
ReducerName = NewType("ReducerName", str)
IngesterName = NewType("IngesterName", str)
ParameterName = NewType("ParameterName", str)
WorkerTag = NewType("WorkerTag", str)
Digest = NewType("Digest", str)
HashDigest = NewType("HashDigest", str)
"""The original's name for a parameters hash (ours: :data:`Digest`)."""
MappingName = NewType("MappingName", str)
"""The name of a part of a trigger map (``{"parts": {name: ...}}``)."""
VirtualConstraint = NewType("VirtualConstraint", int)
"""A virtual worker's number in a trigger map: events with the same one go to the same worker."""
GENERIC_WORKER = WorkerTag("generic")
"""The tag every worker has unless told otherwise."""
DUMP_PREFIX = ParameterName("dump_prefix")
"""The controller's own parameter (the original's): when set, every ingester writes each scan's
frames to ``<dump_prefix><ingester>-<scan id>.cbors``."""
ZmqUrl = Annotated[Url, UrlConstraints(allowed_schemes=["tcp"])]
"""A ZeroMQ ``tcp://`` address."""

BUILD_META_ENV = "BUILD_META_FILE"
"""Environment variable naming the JSON file with the payload's build provenance
(:mod:`dranspose.io.build_meta` reads it)."""


def _shortened(value: Any) -> Any:
    """Long bytes or text as their start, their length and their end (for ``repr``)."""
    if isinstance(value, bytes) and len(value) > 100:
        return value[:50] + f"... (total length {len(value)} bytes) ...".encode() + value[-50:]
    if isinstance(value, str) and len(value) > 100:
        return value[:50] + f"... (total length {len(value)} characters) ..." + value[-50:]
    return value


class WorkParameter(BaseModel):
    """One parameter as a payload sees it: raw ``data`` bytes and the typed ``value``.

    ``uuid`` is the original's version id of one value (new for every value set); a parameter no
    worker or reducer class declares arrives with its raw bytes in both ``data`` and ``value``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: ParameterName
    data: Optional[bytes] = None
    value: Optional[Any] = None
    uuid: UUID4 = Field(default_factory=uuid.uuid4)

    def __repr_args__(self) -> Iterable[tuple[Optional[str], Any]]:
        # a poni file or a mask in a log line: its start, its length and its end
        for name, value in super().__repr_args__():
            yield name, _shortened(value)


class BuildGitMeta(BaseModel):
    """Where the payload code came from; reducers store it next to their results."""

    model_config = ConfigDict(extra="allow")

    commit_hash: Optional[str] = None
    branch_name: Optional[str] = None
    timestamp: Optional[str] = None
    repository_url: Optional[str] = None


class BuildMetaError(ValueError):
    """The build provenance file exists but cannot be read
    (:func:`dranspose.io.build_meta.read_build_meta` reads it)."""


class PayloadState(BaseModel):
    """What a payload instance learns about the component hosting it.

    The fields after ``mapreduce_version`` are the original's ``DistributedState``: the process's
    ``service_uuid``, the current scan's id as ``mapping_uuid``, the ``parameters_hash`` of the
    values it computes with, and the events it ``processed`` since it started, at a rate of
    ``event_rate`` per second (all filled when the payload is created for a scan).
    """

    name: str
    dranspose_version: Optional[str] = None
    mapreduce_version: Optional[BuildGitMeta] = None
    service_uuid: UUID4 = Field(default_factory=uuid.uuid4)
    mapping_uuid: Optional[UUID4] = None
    parameters_hash: Optional[HashDigest] = None
    processed_events: int = 0
    event_rate: float = 0.0


class ConnectedWorker(BaseModel):
    """A worker an ingester of the original sends to (``IngesterState.connected_workers``)."""

    name: WorkerName
    service_uuid: UUID4
    last_seen: float = Field(default_factory=time.time)


class IngesterState(PayloadState):
    """An ingester as the original's ``EnsembleState`` lists it.

    ``url`` is the data-plane address workers connect to: the original's ingesters listen, ours
    connect to the workers, so ours report ``None`` (the original requires a ``tcp://`` URL).
    """

    name: IngesterName
    url: Optional[ZmqUrl] = None
    connected_workers: dict[UUID4, ConnectedWorker] = {}
    streams: list[StreamName] = []


class WorkerState(PayloadState):
    """The ``state`` given to a worker class."""

    name: WorkerName
    ingesters: list[IngesterState] = []
    tags: set[WorkerTag] = {GENERIC_WORKER}


class ReducerState(PayloadState):
    """The ``state`` given to a reducer class; ``url`` is where workers send their results."""

    name: ReducerName = ReducerName("reducer")
    url: Optional[ZmqUrl] = None


class EnsembleState(BaseModel):
    """The original's ``GET /api/v1/config``: every component, the parameters' versions and hash.

    Our answer parses into it (``EnsembleState.model_validate(response.json())``).
    """

    ingesters: list[IngesterState]
    workers: list[WorkerState]
    reducer: Optional[ReducerState]
    controller_version: Optional[str] = None
    parameters_version: dict[ParameterName, UUID4] = {}
    parameters_hash: Optional[HashDigest] = None

    def get_streams(self) -> list[StreamName]:
        """The streams every worker receives and an ingester serves."""
        served = {s for i in self.ingesters for s in i.streams}
        received = [{s for i in w.ingesters for s in i.streams} for w in self.workers]
        return list(served.intersection(*received))

    def get_workers(self) -> list[WorkerName]:
        return [w.name for w in self.workers]


class VirtualWorker(BaseModel):
    """The original's record of one virtual worker of a trigger map (tags and constraint).

    Trigger maps are validated by :class:`dranspose.core.triggermap.VirtualWorker`; this is the
    plain record for code that builds maps with the original's class.
    """

    tags: set[WorkerTag] = {GENERIC_WORKER}
    constraint: Optional[VirtualConstraint] = None


class IntervalLoad(BaseModel):
    """Time a worker spent over some events: ``active`` of ``total`` seconds."""

    total: float
    active: float
    events: int

    @property
    def load(self) -> float:
        return self.active / self.total


class WorkerLoad(BaseModel):
    """A worker's load over intervals of recent events (or the whole ``"scan"``)."""

    last_event: int
    intervals: dict[Union[int, Literal["scan"]], IntervalLoad]


SystemLoadType = dict[WorkerName, WorkerLoad]
"""Every worker's :class:`WorkerLoad`."""


def as_uuid4(value: Optional[str]) -> Optional[uuid.UUID]:
    """``value`` (a process instance or scan id, hex) as a UUID4; ``None`` when it is none."""
    if not value:
        return None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return parsed if parsed.version == 4 else None

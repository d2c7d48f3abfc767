"""Records that components exchange through Redis: registry entries, scans, readiness, progress.

Pure pydantic models, no I/O. :mod:`dranspose.store` moves them in and out of Redis; the services
only ever see these typed objects.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Literal, Optional

from pydantic import BaseModel, Field

from dranspose.protocol import BuildGitMeta, EventNumber, StreamName, WorkerName


class ControllerBusy(RuntimeError):
    """Another controller holds the lock on this Redis."""


class ComponentKind(str, Enum):
    controller = "controller"
    ingester = "ingester"
    worker = "worker"
    reducer = "reducer"


class ComponentInfo(BaseModel):
    """A registry entry, refreshed by its component's heartbeat; it expires when the component dies."""

    kind: ComponentKind
    name: str
    state: str = "idle"
    url: Optional[str] = Field(None, description="data-plane address other components connect to")
    streams: list[StreamName] = []
    tags: list[str] = []
    scan_id: Optional[str] = Field(None, description="the scan this component has prepared for")
    dranspose_version: str = ""
    mapreduce_version: Optional[BuildGitMeta] = None
    last_seen: float = Field(default_factory=time.time)
    pid: Optional[int] = None


class ScanInfo(BaseModel):
    """The active scan as every component sees it.

    The trigger map itself travels in the assignment stream (in batches); what components need up
    front is which streams and workers take part and how many events there are.
    """

    scan_id: str
    streams: list[StreamName]
    workers: list[WorkerName]
    n_events: int = Field(description="events including the reserved first and last")
    started_at: float = Field(default_factory=time.time)
    stopped: bool = False


class FailedEvent(BaseModel):
    event_number: EventNumber
    worker: str
    reason: str


class WorkerReport(BaseModel):
    """A worker asking for more work and reporting what it finished since its last report."""

    worker: WorkerName
    want: int = 0
    completed: list[EventNumber] = []
    failed: list[FailedEvent] = []


class AssignedEvent(BaseModel):
    """Which real workers get which stream's frame of one event (absent stream: no frame)."""

    event_number: EventNumber
    streams: dict[StreamName, list[WorkerName]]


class Progress(BaseModel):
    scan_id: Optional[str] = None
    total: int = 0
    completed: int = 0
    failed: list[FailedEvent] = []
    lost: list[EventNumber] = []
    lost_reason: dict[str, str] = Field(default_factory=dict, description="event number -> reason")
    finished: bool = False
    reducer_finished: bool = False


class ResultHeader(BaseModel):
    """Header frame of a worker-to-reducer message; the pickled payload follows it."""

    kind: Literal["result", "worker_done"] = "result"
    scan_id: str
    worker: WorkerName
    event_number: Optional[EventNumber] = None
    parameters_hash: Optional[str] = None

"""Records that components exchange through Redis: registry entries, scans, readiness, progress.

Pure pydantic models, no I/O. :mod:`dranspose.io.store` moves them in and out of Redis; the services
only ever see these typed objects.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Iterable, Literal, NamedTuple, Optional

from pydantic import BaseModel, Field

from dranspose.core.protocol import BuildGitMeta, EventNumber, ScanId, StreamName, WorkerName


class ControllerBusyError(RuntimeError):
    """Another controller holds the lock on this Redis."""


class ComponentKind(str, Enum):
    controller = "controller"
    ingester = "ingester"
    worker = "worker"
    reducer = "reducer"


class UpstreamState(BaseModel):
    """What an ingester knows about its upstream; part of its registry entry, so it shows in
    ``GET /api/v1/config`` and is at most one heartbeat old.

    Counts are of protocol messages since the ingester started. ``dropped`` is every message
    known to be lost: ``overflow`` (read from a SUB upstream while the ingester's backlog was
    full, and thrown away) plus ``missing`` (never received: numbers skipped in the protocol's
    own message counter, lost at the publisher's high-water mark, in the network or during a
    reconnect; only protocols with a counter can tell). ``discarded`` messages were received
    but belong to no scan (before a series start), ``skipped`` ones are keep-alives.
    """

    url: str
    transport: str = Field(description="pull, sub, tcp (client) or http (server)")
    protocol: str
    connected: bool = False
    connects: int = Field(0, description="connections made (ZMQ: peers connected)")
    disconnects: int = 0
    received: int = 0
    forwarded: int = 0
    skipped: int = 0
    discarded: int = 0
    dropped: int = 0
    overflow: int = 0
    missing: int = 0
    gaps: int = Field(0, description="places where the message counter skipped numbers")
    last_error: Optional[str] = None


class ComponentInfo(BaseModel):
    """A registry entry, refreshed by its component's heartbeat; it expires when the component dies."""

    kind: ComponentKind
    name: str
    state: str = "idle"
    url: Optional[str] = Field(None, description="data-plane address other components connect to")
    api_url: Optional[str] = Field(
        None,
        description="the component's HTTP API when it serves one (the reducer: its results, "
        "the H5Web viewer at <api_url>viewer/); the dashboard links to it",
    )
    streams: list[StreamName] = []
    tags: list[str] = []
    scan_id: Optional[ScanId] = Field(None, description="the scan this component has prepared for")
    dranspose_version: str = ""
    mapreduce_version: Optional[BuildGitMeta] = None
    last_seen: float = Field(default_factory=time.time)
    pid: Optional[int] = None
    instance: str = Field(
        "",
        description="random id of this process: a restarted component with "
        "the same name is a different instance",
    )
    upstream: Optional[UpstreamState] = Field(None, description="ingesters: their upstream")
    parameters_hash: Optional[str] = Field(
        None, description="workers and the reducer: hash of the parameter values they compute with"
    )


class ScanInfo(BaseModel):
    """The active scan as every component sees it.

    The trigger map itself travels in the assignment stream (in batches); what components need up
    front is which streams and workers take part and how many events there are.
    """

    scan_id: ScanId
    streams: list[StreamName]
    workers: list[WorkerName]
    n_events: int = Field(description="events including the reserved first and last")
    started_at: float = Field(default_factory=time.time)
    stopped: bool = False
    aborted: Optional[str] = Field(
        None,
        description="why the scan was cut short by a fault "
        "(a component died, the controller was replaced)",
    )
    complete: bool = Field(
        False,
        description="every event is accounted for: sessions that "
        "stayed open for re-deliveries (retry_lost) end",
    )
    retry_lost: bool = Field(
        False,
        description="re-deliver the events of a worker that dies "
        "to another worker with its tags (ingesters keep frames until done)",
    )
    instances: dict[str, str] = Field(
        default_factory=dict,
        description="component name -> instance of the workers and ingesters the scan started "
        "with; a restarted process (new instance) does not join the running scan",
    )

    def takes_part(self, info: ComponentInfo) -> bool:
        """Whether this process (not merely a component of that name) belongs to the scan.

        A component that registered after the scan started, or was restarted since, waits for
        the next scan: it could not know which frames and events its predecessor handled.
        """
        if not self.instances:  # a scan described without instances (tests, older controllers)
            return True
        return self.instances.get(info.name) == info.instance


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
    final: bool = Field(False, description="the worker's last report of the scan")
    lost: list[FailedEvent] = Field(
        [],
        description="events the sender cannot deliver (an ingester asked to re-deliver "
        "frames it no longer holds); ``worker`` names the sender",
    )


class AssignedEvent(BaseModel):
    """Which real workers get which stream's frame of one event.

    The one model of this message: the assigner (``dranspose.core.triggermap``, which calls it
    ``Assignment``) builds it, the controller publishes it, ingesters route by it and workers
    learn from it which events and streams to expect. A stream absent from ``streams`` has no
    frame in this event; an empty list means the frame is dropped.

    A re-delivery (``redelivered``) names only the replacement of a dead worker, for the
    streams it still needs; ingesters send those frames again from what they kept.
    """

    event_number: EventNumber
    streams: dict[StreamName, list[WorkerName]]
    redelivered: bool = False


class AssignedRun(NamedTuple):
    """``length`` consecutive events from ``first`` with the same destinations: how assignments
    travel and are read.

    A worker that asks for ``k`` events is bound to ``k`` consecutive events of a simple map, so
    a batch of assignments is mostly a few runs. Readers handle a run at once: a worker skips the
    runs that are not its own without looking at their events, and nothing per event is built
    for them.
    """

    first: int
    length: int
    streams: dict[StreamName, list[WorkerName]]
    redelivered: bool = False

    def events(self) -> range:
        return range(self.first, self.first + self.length)


def runs_of(events: Iterable[AssignedEvent]) -> list[AssignedRun]:
    """Consecutive events with equal destinations (and re-delivery flag) as runs, in order."""
    starts: list[AssignedEvent] = []
    lengths: list[int] = []
    streams: Optional[dict[StreamName, list[WorkerName]]] = None
    again: Optional[bool] = None
    following = -1
    for event in events:
        number = event.event_number
        if number == following and event.streams == streams and event.redelivered == again:
            lengths[-1] += 1
        else:
            starts.append(event)
            lengths.append(1)
            streams, again = event.streams, event.redelivered
        following = number + 1
    return [
        AssignedRun(e.event_number, n, e.streams, e.redelivered) for e, n in zip(starts, lengths)
    ]


Assignment = AssignedEvent
"""The same model under the name the assigner and its callers use; ``dranspose.core.triggermap``
re-exports it, so both import paths name one class."""


class Progress(BaseModel):
    scan_id: Optional[ScanId] = None
    total: int = 0
    completed: int = 0
    failed: list[FailedEvent] = []
    lost: list[EventNumber] = []
    lost_reason: dict[str, str] = Field(default_factory=dict, description="event number -> reason")
    finished: bool = False
    reducer_finished: bool = False
    aborted: Optional[str] = Field(
        None,
        description="why a fault cut the scan short; every "
        "event not accounted for then is listed as lost",
    )
    redelivered: list[EventNumber] = Field(
        [], description="events of dead workers given to another worker (--retry-lost)"
    )
    unprocessed: list[list[int]] = Field(
        [],
        description="after POST /api/v1/stop: [first, last] ranges (inclusive) of the events "
        "the scan never processed",
    )
    unprocessed_reason: Optional[str] = None
    resumed: int = Field(
        0, description="how many times a successor controller took the running scan over"
    )
    resumed_at: Optional[float] = Field(
        None, description="when the last successor resumed the scan (Unix time)"
    )


class ResultHeader(BaseModel):
    """Header frame of a worker-to-reducer message.

    ``kind="results"``: the pickled payloads of ``events`` follow in that order (one message
    per batch the worker processed: one header to validate per batch, not per result), one frame
    each, or, with ``packed``, the small ones joined into one frame first and ``packed`` giving
    each payload's length (-1 for a large one, which follows in its own frame);
    ``redelivered_events`` names those of them that were re-delivered.
    ``kind="worker_done"``: the worker left the scan; nothing follows.
    (:func:`dranspose.io.dataplane.decode_results` splits a message into its results.)
    """

    kind: Literal["results", "worker_done"] = "results"
    scan_id: ScanId
    worker: WorkerName
    parameters_hash: Optional[str] = None
    events: list[EventNumber] = []
    redelivered_events: list[EventNumber] = []
    packed: Optional[list[int]] = None

"""The controller's ``/metrics`` (Prometheus text format) and ``/healthz``.

The controller knows the scan's event counts itself; every other component publishes a
:class:`~dranspose.core.stats.ComponentStats` snapshot with its heartbeat. A request gathers both into a
:class:`PipelineView` and renders it through a fresh ``CollectorRegistry`` with one custom
collector, so nothing lives in prometheus_client's global registry and two controllers in one
process (tests) never see each other's numbers.

Labels stay bounded: worker, stream and component names only; the scan id appears in one info
metric for the current scan, never on counters.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Iterator, Optional

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from pydantic import BaseModel

from dranspose.core.coordination import ComponentInfo, ComponentKind
from dranspose.core.protocol import ScanId
from dranspose.core.stats import ComponentStats, HistogramSnapshot
from dranspose.http.auth import PUBLIC
from dranspose.http.controller_host import ControllerHost

if TYPE_CHECKING:
    from dranspose.core.scan_account import ScanAccount

REDIS_TIMEOUT = 2.0
"""/metrics and /healthz answer within about this long even when Redis hangs."""


class ScanCounters(BaseModel):
    """The current scan's event counts, the same numbers ``/api/v1/progress`` lists."""

    scan_id: ScanId
    expected: int
    assigned: int
    completed: int
    failed: int
    lost: int
    finished: bool

    @classmethod
    def of(cls, run: ScanAccount) -> ScanCounters:
        progress = run.progress
        return cls(
            scan_id=run.scan.scan_id,
            expected=progress.total,
            # released in event order: the release point is the number of events assigned; a run
            # recovered from a predecessor has no assigner, so this controller assigned nothing
            assigned=int(run.assigner.next_event) if run.assigner is not None else 0,
            completed=progress.completed,
            # a failure is reported per worker share; an event counts once
            failed=len({f.event_number for f in progress.failed}),
            lost=len(progress.lost),
            finished=progress.finished and progress.reducer_finished,
        )


class PipelineView(BaseModel):
    """Everything one /metrics answer shows."""

    scan: Optional[ScanCounters] = None
    worker_reports: dict[str, int] = {}
    redis_up: bool = True
    components: list[ComponentInfo] = []
    stats: list[ComponentStats] = []


async def gather_view(controller: ControllerHost) -> PipelineView:
    run = controller.run_state
    view = PipelineView(
        scan=ScanCounters.of(run) if run is not None else None,
        worker_reports=dict(run.totals) if run is not None else {},
    )
    try:
        view.components, view.stats = await asyncio.wait_for(
            asyncio.gather(controller.store.components(), controller.store.all_stats()),
            REDIS_TIMEOUT,
        )
    except Exception:
        view.redis_up = False
    return view


def _histogram(
    name: str, doc: str, label: str, items: list[tuple[str, HistogramSnapshot]]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=[label])
    for value, hist in items:
        buckets = [
            ("+Inf" if bound == float("inf") else repr(float(bound)), float(count))
            for bound, count in hist.cumulative()
        ]
        family.add_metric([value], buckets, hist.sum)
    return family


class PipelineCollector:
    """A prometheus_client collector over one :class:`PipelineView`."""

    def __init__(self, view: PipelineView) -> None:
        self.view = view

    def describe(self) -> list[Metric]:
        return []  # registering must not collect: the view is rendered exactly once

    def collect(self) -> Iterator[Metric]:
        yield from self._scan()
        yield from self._components()
        yield from self._workers()
        yield from self._ingesters()
        yield from self._reducers()

    def _scan(self) -> Iterator[Metric]:
        scan = self.view.scan
        counts = scan or ScanCounters(
            scan_id="", expected=0, assigned=0, completed=0, failed=0, lost=0, finished=False
        )
        yield GaugeMetricFamily(
            "dranspose_events_expected",
            "Events in the current scan's trigger map",
            value=counts.expected,
        )
        for verb, doc in (
            ("assigned", "Events of the current scan released to workers"),
            ("completed", "Events of the current scan every assigned worker processed"),
            ("failed", "Events of the current scan whose processing raised (counted once)"),
            ("lost", "Events of the current scan lost with a dead worker"),
        ):
            yield CounterMetricFamily(f"dranspose_events_{verb}", doc, value=getattr(counts, verb))
        yield GaugeMetricFamily(
            "dranspose_scan_finished",
            "1 once the current scan and its reducer have finished",
            value=1 if counts.finished else 0,
        )
        if scan is not None:
            yield InfoMetricFamily(
                "dranspose_scan", "The current scan", value={"scan_id": scan.scan_id}
            )
        reports = CounterMetricFamily(
            "dranspose_worker_events_reported",
            "Event shares a worker reported done (processed or failed) in the current scan",
            labels=["worker"],
        )
        for worker, n in sorted(self.view.worker_reports.items()):
            reports.add_metric([worker], n)
        yield reports

    def _components(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "dranspose_redis_up",
            "1 if the controller read the registry from Redis for this answer",
            value=1 if self.view.redis_up else 0,
        )
        up = GaugeMetricFamily(
            "dranspose_component_up",
            "1 for every component registered (heartbeat recent)",
            labels=["kind", "component"],
        )
        for info in self.view.components:
            up.add_metric([info.kind.value, info.name], 1)
        yield up
        dropped = CounterMetricFamily(
            "dranspose_log_records_dropped",
            "Log records a component dropped because Redis lagged",
            labels=["kind", "component"],
        )
        for stats in self.view.stats:
            dropped.add_metric([stats.kind.value, stats.name], stats.log_records_dropped)
        yield dropped

    def _of(self, kind: ComponentKind) -> list[ComponentStats]:
        return [s for s in self.view.stats if s.kind == kind]

    def _workers(self) -> Iterator[Metric]:
        workers = self._of(ComponentKind.worker)
        busy = CounterMetricFamily(
            "dranspose_worker_busy_seconds",
            "Time a worker spent in process_event",
            labels=["worker"],
        )
        ratio = GaugeMetricFamily(
            "dranspose_worker_busy_ratio",
            "Share of the last ~10 s a worker spent in process_event",
            labels=["worker"],
        )
        for s in workers:
            busy.add_metric([s.name], s.busy_seconds)
            ratio.add_metric([s.name], s.busy_ratio)
        yield busy
        yield ratio
        queued = GaugeMetricFamily(
            "dranspose_worker_events_queued",
            "Events assigned to a worker and not yet processed",
            labels=["worker"],
        )
        held = GaugeMetricFamily(
            "dranspose_worker_frames_buffered_bytes",
            "Bytes of frames a worker received and has not processed yet",
            labels=["worker"],
        )
        for s in workers:
            queued.add_metric([s.name], s.queues.events_queued)
            held.add_metric([s.name], s.queues.buffered_bytes)
        yield queued
        yield held
        yield _histogram(
            "dranspose_event_processing_seconds",
            "Duration of one process_event call",
            "worker",
            [(s.name, s.processing) for s in workers if s.processing is not None],
        )

    def _ingesters(self) -> Iterator[Metric]:
        frames = CounterMetricFamily(
            "dranspose_frames_ingested",
            "Upstream messages an ingester read for a stream",
            labels=["stream", "ingester"],
        )
        size = CounterMetricFamily(
            "dranspose_bytes_ingested",
            "Bytes of the upstream messages an ingester read for a stream",
            labels=["stream", "ingester"],
        )
        backlog = GaugeMetricFamily(
            "dranspose_upstream_messages_backlogged",
            "Upstream messages an ingester read and has not forwarded yet",
            labels=["ingester"],
        )
        backlog_bytes = GaugeMetricFamily(
            "dranspose_upstream_messages_backlogged_bytes",
            "Bytes of the upstream messages an ingester read and has not forwarded yet",
            labels=["ingester"],
        )
        blocked = CounterMetricFamily(
            "dranspose_ingester_blocked_seconds",
            "Time an ingester held a message waiting for a worker to "
            "take it, reading no upstream (backpressure)",
            labels=["ingester"],
        )
        for s in self._of(ComponentKind.ingester):
            for stream, counters in sorted(s.streams.items()):
                frames.add_metric([stream, s.name], counters.frames)
                size.add_metric([stream, s.name], counters.bytes)
            backlog.add_metric([s.name], s.queues.backlog_messages)
            backlog_bytes.add_metric([s.name], s.queues.backlog_bytes)
            blocked.add_metric([s.name], s.queues.blocked_seconds)
        yield frames
        yield size
        yield backlog
        yield backlog_bytes
        yield blocked
        dropped = CounterMetricFamily(
            "dranspose_upstream_messages_dropped",
            "Upstream messages known to be lost before an ingester "
            "forwarded them (SUB: backlog overflow and gaps in the "
            "message counter)",
            labels=["stream", "ingester"],
        )
        for info in self.view.components:
            if info.kind == ComponentKind.ingester and info.upstream is not None:
                for stream in info.streams:
                    dropped.add_metric([stream, info.name], info.upstream.dropped)
        yield dropped

    def _reducers(self) -> Iterator[Metric]:
        reducers = self._of(ComponentKind.reducer)
        depth = GaugeMetricFamily(
            "dranspose_reducer_queue_depth",
            "Results received by the reducer and not yet through process_result",
            labels=["reducer"],
        )
        ratio = GaugeMetricFamily(
            "dranspose_reducer_busy_ratio",
            "Share of the last ~10 s the reducer spent in process_result",
            labels=["reducer"],
        )
        for s in reducers:
            depth.add_metric([s.name], s.queue_depth)
            ratio.add_metric([s.name], s.busy_ratio)
        yield depth
        yield ratio
        yield _histogram(
            "dranspose_result_processing_seconds",
            "Duration of one process_result call",
            "reducer",
            [(s.name, s.processing) for s in reducers if s.processing is not None],
        )


def render(view: PipelineView) -> bytes:
    """The view in Prometheus text format, through a registry of its own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(view))
    return generate_latest(registry)


def observability_router(controller: ControllerHost) -> APIRouter:
    """``GET /metrics`` and ``GET /healthz`` of the controller."""
    router = APIRouter()

    @router.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format: scan event counters and every component's statistics."""
        return Response(render(await gather_view(controller)), media_type=CONTENT_TYPE_LATEST)

    @router.get("/healthz", openapi_extra=PUBLIC)  # probes carry no token
    async def healthz() -> Any:
        """200 while Redis answers and says this controller holds the lock; else 503 and why."""
        name = controller.info.name
        try:
            holder = await asyncio.wait_for(
                controller.store.controller_lock_holder(), REDIS_TIMEOUT
            )
        except Exception as exc:
            return JSONResponse(
                {
                    "status": "unavailable",
                    "component": name,
                    "detail": f"Redis does not answer: {str(exc) or type(exc).__name__}",
                },
                status_code=503,
            )
        if not controller.acquired or holder != controller.owner:
            held = f"held by {holder}" if holder else "held by nobody"
            return JSONResponse(
                {
                    "status": "unavailable",
                    "component": name,
                    "detail": f"this controller ({controller.owner}) does not hold "
                    f"the controller lock ({held})",
                },
                status_code=503,
            )
        run = controller.run_state
        return {
            "status": "ok",
            "component": name,
            "redis": "ok",
            "scan_id": run.scan.scan_id if run is not None else None,
        }

    return router

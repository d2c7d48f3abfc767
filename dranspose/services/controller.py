"""The controller: holds the trigger map, hands events to workers in batches, tracks progress.

Only one controller may be active against one Redis (a lock renewed while it runs). The REST API
is the operator's entry point; the scan loop turns worker reports into assignment batches, so
Redis traffic grows with batches, not with events.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Mapping, Optional

from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import Response

from dranspose.coordination import (
    ControllerBusy,
    ComponentInfo,
    ComponentKind,
    FailedEvent,
    Progress,
    ScanInfo,
)
from dranspose.parameters import (
    MAX_PARAMETER_BYTES,
    ParameterDescription,
    ParameterError,
    ParameterSet,
)
from dranspose.protocol import EventNumber, WorkerName
from dranspose.services.base import REGISTRY_TTL_SECONDS, Component
from dranspose.services.logs_api import logs_router
from dranspose.services.metrics import observability_router
from dranspose.services.dashboard import dashboard_router
from dranspose.services.http_errors import RAW_BODY, install_error_handlers
from dranspose.store import Store
from dranspose.triggermap import (
    Assigner,
    Assignment,
    AssignmentError,
    SequenceRequest,
    TriggerMap,
    TriggerMapError,
)

logger = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 5.0


def _inlined(schema: Any, defs: Optional[dict[str, Any]] = None) -> Any:
    """A JSON schema with its local ``$defs`` references replaced by the definitions, so it can
    be embedded anywhere in the OpenAPI document."""
    if defs is None and isinstance(schema, dict):
        defs = schema.get("$defs", {})
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inlined(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inlined(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inlined(v, defs) for v in schema]
    return schema


SEQUENCE_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": _inlined(SequenceRequest.model_json_schema())}}}}
"""The documented body of ``POST /api/v1/sequence`` (parsed by hand, to word its errors)."""


class ScanRun:
    """The controller's view of one scan: assigner, per-event bookkeeping, progress."""

    def __init__(self, scan: ScanInfo, trigger_map: TriggerMap, request: SequenceRequest,
                 workers: dict[WorkerName, set[str]]) -> None:
        self.scan = scan
        self.trigger_map = trigger_map
        self.request = request
        self.assigner = Assigner(trigger_map, workers)
        self.pending: dict[int, set[WorkerName]] = {}
        self.progress = Progress(scan_id=scan.scan_id, total=len(trigger_map))
        self.accounted: set[int] = set()
        self.failed_events: set[int] = set()
        self.failures_seen: set[tuple[int, str]] = set()
        self.rates: dict[WorkerName, collections.deque[tuple[float, int]]] = {
            w: collections.deque(maxlen=200) for w in workers}
        self.totals: dict[WorkerName, int] = {w: 0 for w in workers}

    def released(self, assignments: list[Assignment]) -> list[Assignment]:
        batch = []
        for a in assignments:
            destinations = {w for names in a.streams.values() for w in names}
            if destinations:
                self.pending[a.event_number] = destinations
            else:  # every frame of this event is discarded: nothing to wait for
                self._account(a.event_number)
                self.progress.completed += 1
            batch.append(a)
        return batch

    def _account(self, event: int) -> bool:
        if event in self.accounted:
            return False
        self.accounted.add(event)
        return True

    def completed(self, worker: WorkerName, event: int, failed: bool = False) -> None:
        """``worker`` is done with its share of ``event``; the event is done when all are."""
        try:
            self.assigner.complete(event, worker)
        except AssignmentError:
            # reports are at-least-once: a resent completion is already counted
            logger.debug("worker %s reported event %d again or without owning it", worker, event)
            return
        self.totals[worker] = self.totals.get(worker, 0) + 1
        if failed:
            self.failed_events.add(event)
        waiting = self.pending.get(event)
        if waiting is None:
            return
        waiting.discard(worker)
        if not waiting:
            del self.pending[event]
            # total = completed + failed + lost: a failed event is reported, not counted as done
            if self._account(event) and event not in self.failed_events:
                self.progress.completed += 1

    def failed(self, failure: FailedEvent) -> None:
        # reports are at-least-once (a worker resends one interrupted mid-write): count once
        key = (failure.event_number, failure.worker)
        if key in self.failures_seen:
            return
        self.failures_seen.add(key)
        self.progress.failed.append(failure)
        self.completed(WorkerName(failure.worker), failure.event_number, failed=True)

    def lost(self, worker: WorkerName, reason: str) -> None:
        events = self.assigner.forget_worker(worker)
        for event in events:
            self.pending.get(event, set()).discard(worker)
            if not self.pending.get(event):
                self.pending.pop(event, None)
                if self._account(event):
                    self.progress.lost.append(EventNumber(event))
                    self.progress.lost_reason[str(event)] = reason
        self.scan.workers = [w for w in self.scan.workers if w != worker]

    @property
    def all_accounted(self) -> bool:
        return len(self.accounted) >= self.progress.total



class Controller(Component):
    """The coordination service; ``app`` is its FastAPI application."""

    def __init__(self, store: Store, name: str = "controller", batch_size: int = 64) -> None:
        super().__init__(store, ComponentInfo(kind=ComponentKind.controller, name=name))
        self.owner = f"{name}-{uuid.uuid4().hex[:8]}"
        self.batch_size = batch_size
        self.run_state: Optional[ScanRun] = None
        self.acquired = False
        self.app = self._build_app()

    # -- lifecycle ----------------------------------------------------------------------------

    async def acquire(self) -> None:
        if self.acquired:
            return
        await self.store.wait_until_reachable()
        holder = await self.store.acquire_controller_lock(self.owner, LOCK_TTL_SECONDS)
        if holder is not None:
            raise ControllerBusy(
                f"another controller ({holder}) is active on {self.store.url}; only one may run "
                f"per Redis (its lock expires {LOCK_TTL_SECONDS:.0f} s after it stops)"
            )
        self.acquired = True

    async def set_initial_parameters(self, raw: Mapping[str, bytes]) -> int:
        """Set the values of a parameter file (e.g. a mounted ConfigMap) before serving.

        The names are not checked against declarations: workers publish those only once they
        run, which may be after the controller starts. Workers parse each value against its
        declared type and log an error naming the parameter if it does not fit. All values are
        written with one version bump, so no component sees half of the file.
        """
        for name, data in raw.items():
            if len(data) > MAX_PARAMETER_BYTES:
                raise ParameterError(
                    f"parameter {name!r}: initial value of {len(data)} bytes exceeds the limit "
                    f"of {MAX_PARAMETER_BYTES} bytes")
        return await self.store.set_parameters(raw)

    async def main(self) -> None:
        tasks = [asyncio.create_task(self._renew_lock()), asyncio.create_task(self._scan_loop())]
        try:
            await self._stopping.wait()
        finally:
            for task in tasks:
                task.cancel()
            await self.store.release_controller_lock(self.owner)
            self.acquired = False

    async def _renew_lock(self) -> None:
        while not self.stopping:
            if not await self.store.renew_controller_lock(self.owner, LOCK_TTL_SECONDS):
                logger.error("controller lock lost; stopping")
                self.stop()
                return
            await asyncio.sleep(LOCK_TTL_SECONDS / 3)

    # -- scans --------------------------------------------------------------------------------

    async def workers(self) -> dict[WorkerName, set[str]]:
        return {WorkerName(c.name): set(c.tags) for c in await self.store.components()
                if c.kind == ComponentKind.worker}

    async def start_scan(self, request: SequenceRequest) -> ScanInfo:
        trigger_map = TriggerMap(request)
        workers = await self.workers()
        if not workers:
            raise TriggerMapError("no worker is registered; start workers before a scan")
        trigger_map.validate_against(workers)
        served = {s for c in await self.store.components() if c.kind == ComponentKind.ingester
                  for s in c.streams}
        unserved = [s for s in trigger_map.streams if s not in served]
        if unserved:
            raise TriggerMapError(
                f"stream(s) {', '.join(map(repr, unserved))} have no registered ingester "
                f"(served: {', '.join(map(repr, sorted(served))) or 'none'}); the scan could not end"
            )
        if self.run_state is not None and not self.run_state.scan.stopped:
            await self.stop_scan()
        scan = ScanInfo(scan_id=uuid.uuid4().hex, streams=list(trigger_map.streams),
                        workers=sorted(workers), n_events=len(trigger_map))
        self.run_state = ScanRun(scan, trigger_map, request, workers)
        await self.store.set_progress(self.run_state.progress)
        await self.store.set_scan(scan)
        logger.info("scan %s: %d events, streams %s, workers %s", scan.scan_id, scan.n_events,
                    scan.streams, scan.workers)
        return scan

    async def stop_scan(self) -> None:
        run = self.run_state
        if run is None:
            return
        run.scan.stopped = True
        await self.store.set_scan(run.scan)
        await self.store.set_progress(run.progress)

    async def _scan_loop(self) -> None:
        last_id = "0"
        current: Optional[str] = None
        last_health = 0.0
        last_progress = 0.0
        while not self.stopping:
            run = self.run_state
            if run is None:
                await asyncio.sleep(0.05)
                continue
            if run.scan.scan_id != current:
                current, last_id = run.scan.scan_id, "0"
            try:
                last_id, reports = await self.store.read_reports(current, last_id, block_ms=50)
            except Exception as exc:
                logger.warning("reading worker reports failed: %s", exc)
                await asyncio.sleep(0.2)
                continue
            if self.run_state is not run:
                continue
            batch: list[Assignment] = []
            for report in reports:
                for event in report.completed:
                    run.completed(report.worker, event)
                for failure in report.failed:
                    run.failed(failure)
                if report.want > 0 and not run.scan.stopped and report.worker in run.assigner.workers:
                    batch.extend(run.released(run.assigner.request(report.worker, report.want)))
                now = time.monotonic()
                run.rates.setdefault(report.worker, collections.deque(maxlen=200)).append(
                    (now, run.totals.get(report.worker, 0)))
            if batch:
                await self.store.publish_assignments(current, batch)
            now = time.monotonic()
            if now - last_health > REGISTRY_TTL_SECONDS / 3:
                last_health = now
                await self._check_workers(run)
            finished = run.all_accounted or run.scan.stopped
            if finished and not run.progress.finished:
                run.progress.finished = True
            if run.progress.finished and not run.progress.reducer_finished:
                run.progress.reducer_finished = await self.store.reducer_done(current)
            if now - last_progress > 0.2:  # a snapshot for a successor controller, not per batch
                last_progress = now
                await self.store.set_progress(run.progress)

    async def _check_workers(self, run: ScanRun) -> None:
        alive = {c.name for c in await self.store.components() if c.kind == ComponentKind.worker}
        for worker in list(run.assigner.workers):
            if worker not in alive:
                logger.error("worker %s stopped responding during scan %s", worker,
                             run.scan.scan_id)
                run.lost(worker, f"worker {worker} died")
                await self.store.set_scan(run.scan)

    # -- REST ---------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        controller = self

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            await controller.acquire()
            task = asyncio.create_task(controller.run())
            yield
            controller.stop()
            try:
                await asyncio.wait_for(task, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass

        app = FastAPI(title="dranspose controller", version="1", lifespan=lifespan)
        install_error_handlers(app)
        app.include_router(dashboard_router(controller))  # the web page at / and /api/v1/scan

        @app.post("/api/v1/sequence", openapi_extra=SEQUENCE_BODY)
        async def set_sequence(request: Request) -> dict[str, Any]:
            """Set the trigger map (parts and their sequence) and start a scan."""
            body = await request.body()
            try:
                trigger_map = TriggerMap.from_request_json(body)
                scan = await controller.start_scan(trigger_map.request)
            except TriggerMapError as exc:
                raise HTTPException(422, str(exc))
            return {"scan_id": scan.scan_id, "events": scan.n_events, "workers": scan.workers}

        @app.get("/api/v1/sequence")
        async def get_sequence() -> dict[str, Any]:
            run = controller.run_state
            if run is None:
                raise HTTPException(404, "no sequence has been set")
            return {"scan_id": run.scan.scan_id, **run.request.model_dump(mode="json")}

        @app.get("/api/v1/config")
        async def config() -> list[dict[str, Any]]:
            return [c.model_dump(mode="json") for c in await controller.store.components()]

        @app.get("/api/v1/status")
        async def status() -> dict[str, Any]:
            run = controller.run_state
            if run is None:
                return {"active": False, "finished": False, "scan_id": None}
            progress = run.progress
            finished = progress.finished and progress.reducer_finished
            return {"active": not finished, "finished": finished, "scan_id": run.scan.scan_id,
                    "stopped": run.scan.stopped, "progress": progress.model_dump(mode="json")}

        @app.get("/api/v1/progress")
        async def progress() -> dict[str, Any]:
            run = controller.run_state
            if run is None:
                return Progress().model_dump(mode="json")
            return run.progress.model_dump(mode="json")

        @app.get("/api/v1/load")
        async def load() -> dict[str, Any]:
            run = controller.run_state
            if run is None:
                return {}
            now = time.monotonic()
            out: dict[str, Any] = {}
            for worker, samples in run.rates.items():
                entry: dict[str, Any] = {"completed": run.totals.get(worker, 0)}
                for window in (1.0, 10.0):
                    recent = [s for s in samples if now - s[0] <= window]
                    if len(recent) >= 2:
                        span = recent[-1][0] - recent[0][0]
                        entry[f"rate_{int(window)}s"] = (
                            (recent[-1][1] - recent[0][1]) / span if span > 0 else 0.0)
                    else:
                        entry[f"rate_{int(window)}s"] = 0.0
                out[worker] = entry
            return out

        async def descriptions() -> dict[str, Any]:
            merged: dict[str, Any] = {}
            for component, items in (await controller.store.get_descriptions()).items():
                for item in items:
                    merged[item["name"]] = item
            return merged

        @app.get("/api/v1/parameters")
        async def parameters() -> list[dict[str, Any]]:
            declared = await descriptions()
            _, raw = await controller.store.get_parameters()
            out = []
            for name, desc in declared.items():
                out.append({**desc, "data": raw.get(name, b"").decode("utf8", "backslashreplace")
                            if name in raw else None,
                            "size": len(raw[name]) if name in raw else None})  # exact bytes
            return out

        @app.get("/api/v1/parameter/{name}")
        async def get_parameter(name: str) -> Response:
            _, raw = await controller.store.get_parameters()
            declared = await descriptions()
            if name in raw:
                return Response(raw[name], media_type="application/octet-stream")
            if name in declared:
                desc = ParameterDescription.from_published(declared[name])
                return Response(desc.to_bytes(desc.default), media_type="application/octet-stream")
            raise HTTPException(404, f"unknown parameter {name!r}")

        @app.post("/api/v1/parameter/{name}", openapi_extra=RAW_BODY)
        async def set_parameter(name: str, request: Request) -> dict[str, Any]:
            """Set one declared parameter from the raw request body; 422 when it does not parse."""
            body = await request.body()
            declared = await descriptions()
            if name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise HTTPException(404, f"unknown parameter {name!r} (declared: {known})")
            desc = ParameterDescription.from_published(declared[name])
            try:
                value = desc.from_bytes(body)
            except ParameterError as exc:
                raise HTTPException(422, str(exc))
            version = await controller.store.set_parameter(name, body)
            return {"name": name, "version": version,
                    "value": value if not isinstance(value, bytes) else None}

        @app.post("/api/v1/stop")
        async def stop() -> dict[str, Any]:
            await controller.stop_scan()
            run = controller.run_state
            return {"scan_id": run.scan.scan_id if run else None, "stopped": run is not None}

        app.include_router(observability_router(controller))  # /metrics, /healthz
        app.include_router(logs_router(controller.store))  # /api/v1/logs, /api/v1/log_stream
        return app

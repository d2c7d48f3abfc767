"""The controller: holds the trigger map, hands events to workers in batches, tracks progress.

Only one controller may be active against one Redis (a lock renewed while it runs). The REST API
(``dranspose.http.controller_api.create_app``, which sees this class only as a
``ControllerHost``) is the operator's entry point; the scan loop turns worker reports into
assignment batches, so Redis traffic grows with batches, not with events. Whoever runs the
controller also serves its app (the command line, ``dranspose.controller:app``):
:meth:`Controller.running` is the lifespan that runs the service while the app is served.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator, Mapping, Optional

from dranspose.core.coordination import (
    AssignedRun,
    Assignment,
    ComponentInfo,
    ComponentKind,
    ControllerBusyError,
    Progress,
    ScanInfo,
    WorkerReport,
)
from dranspose.core.protocol import BuildGitMeta, EventNumber, WorkerName
from dranspose.core.scan_account import ScanAccount
from dranspose.core.scan_resume import Ledger, ResumeError, parse_record, record_of, resume
from dranspose.core.triggermap import TriggerMap, TriggerMapError
from dranspose.io.store import UNAVAILABLE as REDIS_UNAVAILABLE
from dranspose.io.store import Store
from dranspose.runtime.component import REGISTRY_TTL_SECONDS, Component
from dranspose.runtime.controller_parameters import ControllerParameters

logger = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 5.0


class Controller(Component):
    """The coordination service: scans, their account, the parameters' values."""

    def __init__(
        self,
        store: Store,
        name: str = "controller",
        batch_size: int = 64,
        retry_lost: bool = False,
        build_meta: Optional[BuildGitMeta] = None,
    ) -> None:
        """``build_meta`` is the deployment's provenance its registry entry shows."""
        super().__init__(store, ComponentInfo(kind=ComponentKind.controller, name=name), build_meta)
        self.owner = f"{name}-{uuid.uuid4().hex[:8]}"
        self.batch_size = batch_size
        self.retry_lost = retry_lost
        """Default for scans whose sequence request does not say (``?retry_lost=``)."""
        self.run_state: Optional[ScanAccount] = None
        self.scan_started = asyncio.Event()
        """Set when a scan starts: wakes the scan loop resting after a finished scan."""
        self.acquired = False
        self.parameters = ControllerParameters(store)
        """Declarations and values (the ones set here are put back if Redis restarts empty)."""
        self.released_events = 0
        """Events of the current scan handed out so far (the original's ``last_assigned``)."""

    # -- lifecycle ----------------------------------------------------------------------------

    async def acquire(self, wait: float = 0.0) -> None:
        """Take the single-controller lock, waiting up to ``wait`` seconds for it to expire.

        Waiting is for a successor: a controller that crashed leaves its lock behind for at most
        LOCK_TTL_SECONDS. A scan it left running is then resumed (:meth:`_recover_scan`).
        """
        if self.acquired:
            return
        await self.store.wait_until_reachable()
        deadline = time.monotonic() + wait
        while True:
            holder = await self.store.acquire_controller_lock(self.owner, LOCK_TTL_SECONDS)
            if holder is None:
                break
            if time.monotonic() >= deadline:
                raise ControllerBusyError(
                    f"another controller ({holder}) is active on {self.store.url}; only one may "
                    f"run per Redis (its lock expires {LOCK_TTL_SECONDS:.0f} s after it stops)"
                )
            await asyncio.sleep(0.2)
        self.acquired = True
        await self.parameters.load()
        await self._recover_scan()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Take the lock and run while the block runs (the ASGI app's lifespan, or the command line's server), then stop.

        A controller already acquired (the command line takes the lock before it serves, to
        refuse early) keeps its lock.
        """
        await self.acquire()
        task = asyncio.create_task(self.serve())
        try:
            yield
        finally:
            self.stop()
            try:
                await asyncio.wait_for(task, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass

    async def redis_restarted(self) -> None:
        await self.parameters.restore()
        run = self.run_state
        if (
            run is not None
            and not run.progress.finished
            and run.redis_run_id != await self.store.server_run_id()
        ):
            # the scan's assignment and report streams are gone with Redis' memory
            run.abort("Redis restarted during the scan")
            await self.store.set_scan(run.scan)

    async def _recover_scan(self) -> None:
        """Take over a scan a previous controller left running: resume it where it was.

        Its account is rebuilt from Redis (``dranspose.core.scan_resume``): the scan's record,
        the assignments published and the reports sent. A scan that cannot be resumed (no or
        another version of record, a trimmed stream) is aborted with the reason, and the
        workers' reports are counted by the scan loop as they come.
        """
        scan = await self.store.get_scan()
        if scan is None or scan.stopped:
            return
        previous = await self.store.get_progress()
        if previous is not None and previous.scan_id == scan.scan_id and previous.reducer_finished:
            self.run_state = ScanAccount(scan, None, None, {})  # over: only its account to show
            self.run_state.progress = previous
            return
        ledger = Ledger()
        started = time.perf_counter()
        try:
            run = await self.resumed_account(scan, ledger, previous)
            abandoned = [
                c.name
                for c in await self.store.components()
                if c.scan_id == scan.scan_id and c.state == "aborted"
            ]
            if abandoned:  # came back too late: components gave up past --controller-grace
                raise ResumeError(f"{', '.join(sorted(abandoned))} already left it (no controller)")
        except ResumeError as exc:
            released = [
                Assignment(event_number=EventNumber(e), streams=r.streams)
                for r in [*ledger.runs, *ledger.redelivered.values()]
                for e in r.events()
            ]
            reason = f"the controller was replaced during the scan ({self.owner} took over)"
            run = ScanAccount.recover(scan, released, f"{reason} and could not resume it: {exc}")
            self.run_state = run
            await self.store.set_scan(scan)
            await self.store.set_progress(run.progress)
            logger.error("scan %s cannot be resumed (%s); aborted it", scan.scan_id, exc)
            return
        self.run_state = run
        self.released_events = ledger.frontier
        await self.store.set_progress(run.progress)
        logger.warning(
            "scan %s resumed from its predecessor's account (rebuilt in %.0f ms): %d of %d events "
            "released, %d accounted for, %d request(s) to answer",
            scan.scan_id,
            (time.perf_counter() - started) * 1000,
            ledger.frontier,
            scan.n_events,
            len(run.accounted),
            len(run.open_requests),
        )

    async def resumed_account(
        self, scan: ScanInfo, ledger: Ledger, previous: Optional[Progress]
    ) -> ScanAccount:
        """The account of ``scan`` rebuilt from its record and streams; raises ResumeError."""
        # the streams first: a scan that cannot be resumed is aborted with what they hold
        trimmed = await self.store.trimmed_stream(scan.scan_id)
        async for batches in self.store.assignment_chunks(scan.scan_id):
            for raw_id, runs, answered in batches:
                ledger.assignments(raw_id, runs, answered)
        # the reports after these are read by the scan loop (``reports_from``)
        async for reports in self.store.report_chunks(scan.scan_id):
            for raw_id, report in reports:
                if report is None:  # the reducer's done mark
                    ledger.reports_last_id = raw_id
                else:
                    ledger.report(raw_id, report)
        record = parse_record(await self.store.account_record(scan.scan_id))
        if trimmed is not None:
            raise ResumeError(trimmed)
        run = resume(scan, record, ledger, previous)
        run.redis_run_id = await self.store.server_run_id()
        return run

    async def set_initial_parameters(self, raw: Mapping[str, bytes]) -> int:
        """Set the values of a parameter file (e.g. a mounted ConfigMap) before serving.

        The names are not checked against declarations: workers publish those only once they
        run, which may be after the controller starts. Workers parse each value against its
        declared type and log an error naming the parameter if it does not fit. All values are
        written with one version bump, so no component sees half of the file.
        """
        return await self.parameters.set_initial(raw)

    async def main(self) -> None:
        tasks = [asyncio.create_task(self._renew_lock()), asyncio.create_task(self._scan_loop())]
        try:
            await self._stopping.wait()
        finally:
            for task in tasks:
                task.cancel()
            try:
                await self.store.release_controller_lock(self.owner)
            except REDIS_UNAVAILABLE:
                pass  # it expires by itself
            self.acquired = False

    async def _renew_lock(self) -> None:
        while not self.stopping:
            try:
                renewed = await self.store.renew_controller_lock(self.owner, LOCK_TTL_SECONDS)
            except REDIS_UNAVAILABLE as exc:
                logger.warning("cannot renew the controller lock, Redis unavailable (%s)", exc)
            else:
                if not renewed:
                    logger.error("controller lock taken by another controller; stopping")
                    self.stop()
                    return
            await asyncio.sleep(LOCK_TTL_SECONDS / 3)

    # -- scans --------------------------------------------------------------------------------

    async def start_scan(
        self, trigger_map: TriggerMap, retry_lost: Optional[bool] = None
    ) -> ScanInfo:
        """Start a scan of ``trigger_map`` (validated as its request was parsed) after checking
        it against the registered workers and ingesters; a scan still running is stopped."""
        components = await self.store.components()
        workers = {
            WorkerName(c.name): set(c.tags) for c in components if c.kind == ComponentKind.worker
        }
        if not workers:
            raise TriggerMapError("no worker is registered; start workers before a scan")
        trigger_map.validate_against(workers)
        ingesters = [
            c
            for c in components
            if c.kind == ComponentKind.ingester and set(c.streams) & set(trigger_map.streams)
        ]
        served = {s for c in ingesters for s in c.streams}
        unserved = [s for s in trigger_map.streams if s not in served]
        if unserved:
            raise TriggerMapError(
                f"stream(s) {', '.join(map(repr, unserved))} have no registered ingester "
                f"(served: {', '.join(map(repr, sorted(served))) or 'none'}); the scan could not end"
            )
        if self.run_state is not None and not self.run_state.scan.stopped:
            await self.stop_scan()
        instances = {
            c.name: c.instance
            for c in components
            if c.kind == ComponentKind.worker or c in ingesters
        }
        scan = ScanInfo(
            scan_id=uuid.uuid4().hex,
            streams=list(trigger_map.streams),
            workers=sorted(workers),
            n_events=len(trigger_map),
            instances=instances,
            retry_lost=self.retry_lost if retry_lost is None else retry_lost,
        )
        self.released_events = 0
        serving = {c.name: list(c.streams) for c in ingesters}
        self.run_state = ScanAccount(scan, trigger_map, trigger_map.request, workers, serving)
        self.run_state.redis_run_id = await self.store.server_run_id()
        # what a successor needs to resume the scan, before any component sees it
        record = record_of(scan, trigger_map.request, workers, serving)
        await self.store.set_account_record(scan.scan_id, record.model_dump_json())
        await self.store.set_progress(self.run_state.progress)
        await self.store.set_scan(scan)
        self.scan_started.set()  # the scan loop may be idle after the previous scan
        logger.info(
            "scan %s: %d events, streams %s, workers %s",
            scan.scan_id,
            scan.n_events,
            scan.streams,
            scan.workers,
        )
        return scan

    async def stop_scan(self) -> None:
        run = self.run_state
        if run is None:
            return
        run.stop()
        await self.store.set_scan(run.scan)
        await self.store.set_progress(run.progress)

    async def _scan_loop(self) -> None:
        last_id = "0"
        current: Optional[str] = None
        last_health = 0.0
        last_progress = 0.0
        rested: Optional[str] = None
        while not self.stopping:
            run = self.run_state
            if run is None or (run.progress.finished and run.progress.reducer_finished):
                # nothing left to count: rest until the next scan starts (workers ask for its
                # first events within milliseconds; a read of the old scan's reports would
                # hold them until it timed out)
                if run is not None and rested != run.scan.scan_id:
                    rested = run.scan.scan_id
                    try:  # the final snapshot, for a successor controller
                        await self.store.set_progress(run.progress)
                        await self.store.expire_scan_streams(run.scan.scan_id)
                    except REDIS_UNAVAILABLE:
                        rested = None  # write it on the next round
                self.scan_started.clear()
                if self.run_state is run:
                    try:
                        await asyncio.wait_for(self.scan_started.wait(), 0.5)
                    except asyncio.TimeoutError:
                        pass
                continue
            if run.scan.scan_id != current:
                current, last_id = run.scan.scan_id, run.reports_from
            try:
                last_id, last_health, last_progress = await self.scan_step(
                    run, last_id, last_health, last_progress
                )
            except REDIS_UNAVAILABLE as exc:
                logger.warning("Redis unavailable during the scan loop (%s); retrying", exc)
                await self.sleep_or_stop(0.5)

    async def scan_step(
        self, run: ScanAccount, last_id: str, last_health: float, last_progress: float
    ) -> tuple[str, float, float]:
        """Count one read of worker reports, answer their requests, check health and the end."""
        current = run.scan.scan_id
        ended_before = (run.progress.finished, run.progress.reducer_finished)
        last_id, reports = await self.store.read_reports(current, last_id, block_ms=50)
        if self.run_state is not run:
            return last_id, last_health, last_progress
        if run.open_requests:
            reports = self._open_requests_first(run, reports)
        batch: list[AssignedRun] = []
        answered: set[str] = set()
        for report in reports:
            run.completed_all(report.worker, report.completed)
            for failure in report.failed:
                run.failed(failure)
            for undeliverable in report.lost:
                run.undeliverable(undeliverable)
            (run.final_reports if report.final else run.reporters).add(report.worker)
            if (
                report.want > 0
                and not run.scan.stopped
                and run.assigner is not None
                and report.worker in run.assigner.workers
            ):
                released = run.released_runs(run.assigner.request_runs(report.worker, report.want))
                self.released_events += sum(r.length for r in released)
                batch.extend(released)
                answered.add(report.worker)
            run.sample_rate(report.worker, time.monotonic())
        if batch:
            await self.store.publish_runs(current, batch, answered=answered)
        now = time.monotonic()
        # a finished scan has every event accounted for: a component that stops after it lost
        # nothing, and reporting it as died during that scan would be a false alarm
        if (
            now - last_health > REGISTRY_TTL_SECONDS / 3
            and not run.scan.stopped
            and not run.progress.finished
        ):
            last_health = now
            await self._check_components(run)
        if run.progress.finished:
            pass
        elif run.closing_deadline is not None:
            # a stopped or aborted scan ends once the stragglers' reports are in (or the grace
            # is over); then every event is accounted for, one way or another
            if (
                run.reports_in
                or now >= run.closing_deadline
                or await self.store.reducer_done(current)
            ):
                run.close()
                run.progress.finished = True
        elif run.all_accounted:
            run.progress.finished = True
            if run.scan.retry_lost and not run.scan.stopped:
                # workers and ingesters stayed in the scan for re-deliveries: release them
                run.scan.complete = True
                await self.store.set_scan(run.scan)
        if run.progress.finished and not run.progress.reducer_finished:
            run.progress.reducer_finished = await self.store.reducer_done(current)
        # a snapshot for a successor controller, not per batch; but the end at once: the reducer
        # waits for the final account before its finish, and clients for "finished"
        ended = (run.progress.finished, run.progress.reducer_finished) != ended_before
        if ended or now - last_progress > 0.2:
            last_progress = now
            await self.store.set_progress(run.progress)
            if run.scan.retry_lost:
                await self.store.set_confirmed(current, run.confirmed_below)
        return last_id, last_health, last_progress

    @staticmethod
    def _open_requests_first(run: ScanAccount, reports: list[WorkerReport]) -> list[WorkerReport]:
        """A resumed scan's requests its predecessor left unanswered, answered before the new
        reports; unless the worker asked again meanwhile (it has one request open at a time,
        so answering both would give it twice what it asked for)."""
        again = {r.worker for r in reports if r.want > 0}
        asked = [
            WorkerReport(worker=w, want=n) for w, n in run.open_requests.items() if w not in again
        ]
        run.open_requests = {}
        return [*asked, *reports]

    async def _check_components(self, run: ScanAccount) -> None:
        """Workers that died lose their events; an ingester that died aborts the scan."""
        alive = {(c.kind, c.name): c.instance for c in await self.store.components()}
        expected = run.scan.instances
        if run.assigner is not None:
            for worker in list(run.assigner.workers):
                instance = alive.get((ComponentKind.worker, worker))
                if instance is None or (worker in expected and instance != expected[worker]):
                    how = "died" if instance is None else "was restarted"
                    logger.error("worker %s %s during scan %s", worker, how, run.scan.scan_id)
                    moved = run.lost(worker, f"worker {worker} {how}")
                    if moved:
                        logger.warning(
                            "scan %s: %d event(s) of worker %s re-delivered",
                            run.scan.scan_id,
                            len(moved),
                            worker,
                        )
                        await self.store.publish_assignments(
                            run.scan.scan_id, moved, redelivery=True
                        )
                    if not run.assigner.workers:
                        run.abort("every worker of the scan died")
                    else:
                        try:  # can the survivors still take every kind of event?
                            run.assigner.trigger_map.validate_against(run.assigner.workers)
                        except TriggerMapError as exc:
                            run.abort(f"no remaining worker can take the rest of the scan ({exc})")
                    await self.store.set_scan(run.scan)
                    # its lost events at once: a successor's account relies on this snapshot
                    await self.store.set_progress(run.progress)
        for name, streams in run.ingesters.items():
            instance = alive.get((ComponentKind.ingester, name))
            if instance != expected.get(name):
                how = "died" if instance is None else "was restarted"
                logger.error(
                    "ingester %s (stream %s) %s during scan %s",
                    name,
                    ", ".join(streams),
                    how,
                    run.scan.scan_id,
                )
                run.abort(f"ingester {name} (stream {', '.join(streams)}) {how}")
                await self.store.set_scan(run.scan)
                return

"""The reducer: folds every worker result with the payload's ``process_result`` and serves ``publish``.

Results arrive on one PULL socket from all workers. The payload (process_result, timer, finish)
runs in one dedicated thread, so its calls never overlap and it needs no locks of its own, while
the event loop keeps receiving and serving HTTP. A scan ends for the reducer when every worker of
the scan said it is done (or is no longer registered: it died, and the controller reports its
events as lost).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import pickle
import time
from typing import Any, Optional

import zmq.asyncio

from dranspose.core.calling import ReducerCalls
from dranspose.core.construct import trusted
from dranspose.core.coordination import (
    ComponentInfo,
    ComponentKind,
    Progress,
    ResultHeader,
    ScanInfo,
)
from dranspose.core.event import ResultData
from dranspose.core.parameters import ParameterSet
from dranspose.core.payload import ReducerPayload, import_class
from dranspose.core.protocol import BuildGitMeta, ReducerName, ReducerState, ScanId
from dranspose.io.dataplane import Inbox, ResultItem, ThreadInbox, decode_results
from dranspose.io.store import UNAVAILABLE as REDIS_UNAVAILABLE
from dranspose.io.store import Store
from dranspose.runtime.component import CONTROLLER_GRACE_SECONDS, Component, LiveParameters
from dranspose.runtime.logs import bind_component
from dranspose.runtime.session import ScanWatcher, Sorted

logger = logging.getLogger(__name__)

Results = tuple[ResultHeader, list[ResultItem]]
"""The results of one worker message."""

FINAL_WAIT_SECONDS = 2.0
"""How long ``finish`` waits for the controller's final account of a stopped or replaced scan
(a replaced scan never gets one; after a stop the controller may wait for this reducer)."""
RUNNING_FINAL_WAIT_SECONDS = 6.0
"""... and of a scan the record still shows running: longer than the controller lock's 5 s, so
a controller killed as the scan ended is known gone (and waited for) before ``finish`` runs."""


class Reducer(Component):
    def __init__(
        self,
        store: Store,
        reducer_class: Any,
        worker_class: Any = None,
        name: str = "reducer",
        bind: str = "tcp://*:0",
        advertise_host: str = "127.0.0.1",
        http_port: Optional[int] = None,
        http_host: str = "127.0.0.1",
        build_meta: Optional[BuildGitMeta] = None,
        controller_grace: float = CONTROLLER_GRACE_SECONDS,
    ) -> None:
        """``http_port``/``http_host``: where whoever runs the reducer serves its HTTP API
        (``dranspose.http.reducer_api.create_app``), for its registry entry's ``api_url``."""
        super().__init__(
            store,
            ComponentInfo(kind=ComponentKind.reducer, name=name),
            build_meta,
            controller_grace,
        )
        self.reducer_class = import_class(reducer_class)
        classes = [self.reducer_class]
        if worker_class is not None:  # the reducer sees the workers' parameters too
            classes.insert(0, import_class(worker_class))
        self.ctx = zmq.asyncio.Context()
        self.inbox = Inbox(self.ctx, bind, advertise_host, hwm=10_000)
        self.info.url = self.inbox.url
        self.live = LiveParameters.for_classes(store, *classes)
        self.context: dict[str, Any] = {}
        self.executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="reducer", initializer=bind_component, initargs=(name,)
        )
        self.calls: Optional[ReducerCalls] = None
        self.http_port = http_port
        self.http_host = http_host
        if http_port is not None:  # where browsers find the results (the dashboard links it)
            shown = advertise_host if http_host in ("0.0.0.0", "::", "") else http_host
            self.info.api_url = f"http://{shown}:{http_port}/"
        self.results = 0
        self.failures: list[str] = []
        self.current_scan: Optional[ScanId] = None
        self._pending: set[str] = set()
        """Workers of the current scan not done yet (the event loop's)."""
        self._all_done = asyncio.Event()
        self._ending = False
        """Set by the event loop: the payload thread stops receiving for the scan."""
        self.scans: ScanWatcher[list[zmq.Frame]] = ScanWatcher(self, lambda scan: True)
        """Every scan, stopped ones too (workers may have joined before the stop); keeps
        messages of scans not started yet: a worker may begin the next scan while this reducer
        still waits for another worker to finish the previous one."""

    # ReducerHost for the HTTP API
    @property
    def component_name(self) -> str:
        return self.info.name

    @property
    def reducer(self) -> Any:
        return self.calls.payload.instance if self.calls is not None else None

    def set_parameter(self, name: str, data: bytes) -> ParameterSet:
        raise KeyError(f"parameters are set through the controller, not the reducer ({name!r})")

    def status(self) -> dict[str, Any]:
        return {"scan_id": self.current_scan, "results": self.results, "failures": self.failures}

    def parameters_hash(self) -> Optional[str]:
        return self.live.current.hash

    async def main(self) -> None:
        await self.live.publish_descriptions(f"reducer:{self.info.name}")
        watcher = asyncio.create_task(self.live.watch(lambda: self.stopping))
        try:
            await self.scans.join_each(self.run_scan)
        finally:
            watcher.cancel()
            self.inbox.close()
            self.executor.shutdown(wait=False)
            self.ctx.term()

    async def redis_restarted(self) -> None:
        await self.live.publish_descriptions(f"reducer:{self.info.name}")

    @property
    def parameters(self) -> ParameterSet:
        return self.live.current

    async def run_scan(self, scan: ScanInfo) -> None:
        loop = asyncio.get_running_loop()
        if await self._finished_by_a_predecessor(scan.scan_id):
            return
        self.current_scan = scan.scan_id
        self.info.scan_id = scan.scan_id
        self.info.state = "scanning"
        state = ReducerState(
            name=ReducerName(self.info.name),
            dranspose_version=self.info.dranspose_version,
            mapreduce_version=self.info.mapreduce_version,
            url=self.info.url,
            **self.payload_state_fields(),
        )
        await self.live.adopt_published_descriptions()
        params = self.live.current
        payload = await loop.run_in_executor(
            self.executor, lambda: ReducerPayload(self.reducer_class, params, self.context, state)
        )
        self.calls = ReducerCalls(payload, time.monotonic())
        inbox = self.inbox.hand_over(zmq.Context.shadow(self.ctx.underlying))
        self._ending = False
        self._pending = set(scan.workers)
        self._all_done = asyncio.Event()
        early = self.scans.early()
        folding = loop.run_in_executor(
            self.executor, self._result_loop, scan.scan_id, inbox, early, loop
        )
        aborted: Optional[str] = None
        try:
            aborted = await self._wait_for_workers(scan, folding)
        finally:
            self._ending = True  # the payload thread returns once it has folded what it read
            inbox.wake()
            try:
                await folding
            finally:
                inbox.close()
        summary = await self._scan_summary(scan.scan_id, aborted)
        self.context["scan_summary"] = summary
        if summary.get("aborted"):
            logger.warning(
                "reducer %s: scan %s ended early (%s); finish runs with the results folded",
                self.info.name,
                scan.scan_id,
                summary["aborted"],
            )
        await loop.run_in_executor(self.executor, self._finish)
        for _attempt in range(20):  # the controller waits for this mark; Redis may be restarting
            try:
                await self.store.set_reducer_done(scan.scan_id)
                break
            except REDIS_UNAVAILABLE:
                await self.sleep_or_stop(0.5)
        self.info.state = "aborted" if summary.get("aborted") else "idle"

    async def _wait_for_workers(
        self, scan: ScanInfo, folding: asyncio.Future[None]
    ) -> Optional[str]:
        """Wait until every worker of the scan said it is done, died or left it (looked up
        every second), or the reducer stops; the payload thread receives meanwhile. Returns why
        the reducer aborts its part instead: no controller for the grace (a successor may take
        the scan over until then, so the workers are waited for as usual)."""
        done = asyncio.ensure_future(self._all_done.wait())
        stop = asyncio.ensure_future(self._stopping.wait())
        waits: list[asyncio.Future[Any]] = [folding, done, stop]
        try:
            while self._pending and not self.stopping:
                await asyncio.wait(waits, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                if folding.done():
                    folding.result()  # the payload thread failed: raise its error here
                    return None
                if not self._pending or self.stopping:
                    return None
                try:
                    self._pending = await self._still_alive(self._pending, scan)
                except REDIS_UNAVAILABLE:
                    pass  # wait for the workers as before; look again in a second
                missing = await self.controller_missing()
                if missing is not None and self._pending:
                    not_done = ", ".join(sorted(self._pending))
                    self._abort_part(scan.scan_id, missing, f"workers {not_done} not done")
                    return missing
        finally:
            done.cancel()
            stop.cancel()
        return None

    def _abort_part(self, scan_id: ScanId, reason: str, detail: str) -> None:
        """Say that this reducer gives up waiting (for workers or the final account), and why:
        ``finish`` runs next, with the results folded so far and ``reason`` in the summary."""
        logger.error(
            "reducer %s: aborting its part of scan %s: %s; finish runs with the results "
            "folded so far (%s)",
            self.info.name,
            scan_id,
            reason,
            detail,
        )

    def _worker_done(self, worker: str) -> None:
        """A worker's last message of the scan was folded (runs in the event loop)."""
        self._pending.discard(worker)
        if not self._pending:
            self._all_done.set()

    def _elsewhere(self, scan_id: ScanId, parts: list[zmq.Frame], results: int) -> None:
        """A message of another scan (runs in the event loop): a later scan's is kept for it."""
        if self.scans.sort(scan_id, parts) is Sorted.LEFT:
            logger.warning(
                "%d results of scan %s arrived after it ended; dropped", results, scan_id
            )

    def _result_loop(
        self,
        scan_id: ScanId,
        inbox: ThreadInbox,
        early: list[list[zmq.Frame]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Runs in the payload thread for the whole scan: receives the workers' messages, folds
        the results and calls ``timer()`` when it is due, until the event loop ends the scan.

        Receiving here instead of in the event loop saves a wake-up of both threads per
        message and the GIL changing hands at every socket call (bench/skeleton.py); every
        payload call still happens in this one thread, never two at once. What the event loop
        keeps (which workers are still to finish, messages of other scans) goes to it in the
        order the messages came.
        """
        calls = self.calls
        assert calls is not None
        messages = early
        while True:
            if messages:
                self._fold(scan_id, messages, loop)
            if calls.timer_due(time.monotonic()):
                self._timer()
            if self._ending:
                return
            wait = None
            if calls.payload.timer is not None:
                wait = max(calls.next_timer - time.monotonic(), 0.0)
            messages = inbox.receive(wait)

    def _fold(
        self, scan_id: ScanId, messages: list[list[zmq.Frame]], loop: asyncio.AbstractEventLoop
    ) -> None:
        results: list[Results] = []
        for parts in messages:
            try:
                header, items = decode_results(parts)
            except Exception as exc:
                logger.error("malformed result message dropped: %s", exc)
                continue
            if header.scan_id != scan_id:
                loop.call_soon_threadsafe(self._elsewhere, header.scan_id, parts, len(items))
            elif header.kind == "worker_done":
                self._process_batch(results)  # its results before it
                results = []
                loop.call_soon_threadsafe(self._worker_done, header.worker)
            else:
                results.append((header, items))
        self._process_batch(results)

    async def _finished_by_a_predecessor(self, scan_id: ScanId) -> bool:
        """Whether an earlier reducer process already finished this scan (the done mark is set).

        A reducer restarted after a scan ended finds that scan still in the record; its workers
        said done to the predecessor, so waiting for them here would never end, and calling
        ``finish`` again would overwrite the predecessor's output with an empty one.
        """
        try:
            done = await self.store.reducer_done(scan_id)
        except REDIS_UNAVAILABLE:
            return False  # cannot tell: take part, as a reducer of a running scan must
        if done:
            logger.info("scan %s was finished by an earlier reducer; waiting for the next", scan_id)
        return done

    async def _scan_summary(self, scan_id: ScanId, aborted: Optional[str] = None) -> dict[str, Any]:
        """The controller's account of the scan (total, completed, failed, lost with reasons,
        aborted, redelivered), for ``finish`` to read in ``context["scan_summary"]``.

        The controller counts the workers' last reports a moment after they sent their results,
        so this waits briefly for its final count (:meth:`_final_progress`); ``final`` says
        whether it arrived, ``aborted`` why the scan (or this reducer's part) was cut short.
        """
        progress, aborted = await self._final_progress(scan_id, aborted)
        final = progress is not None and progress.finished
        summary: dict[str, Any] = {"scan_id": scan_id, "final": False}
        if progress is not None:
            summary = {**progress.model_dump(mode="json"), "final": final}
        if aborted is not None and not summary.get("aborted"):
            summary["aborted"] = aborted
        return summary

    async def _final_progress(
        self, scan_id: ScanId, aborted: Optional[str]
    ) -> tuple[Optional[Progress], Optional[str]]:
        """The scan's progress once final, or as it is when the wait ends; and ``aborted``, or
        the grace's reason if the controller stayed away.

        FINAL_WAIT_SECONDS after the workers are done; as long as RUNNING_FINAL_WAIT_SECONDS
        while the record says the scan runs (the controller ends a running scan itself, if need
        be by declaring a dead worker's events lost, and a controller killed at that moment is
        known gone only when its lock expires); and while no controller holds the lock, up to the
        grace, since a successor that takes the scan over writes the final account. A successor
        (or a controller back) starts the wait again.
        """
        holder = self.controller_holder
        start = time.monotonic()
        while True:
            try:
                progress = await self.store.get_progress()
            except REDIS_UNAVAILABLE:
                progress = None
            if progress is not None and progress.scan_id != scan_id:
                progress = None
            if (progress is not None and progress.finished) or aborted or self.stopping:
                break
            now = time.monotonic()
            if holder != self.controller_holder or self.controller_lost:
                holder, start = self.controller_holder, now  # the wait starts again
                aborted = await self.controller_missing()
                if aborted is not None:
                    self._abort_part(scan_id, aborted, "without the controller's final account")
                else:
                    await asyncio.sleep(0.1)
                continue
            if now - start >= RUNNING_FINAL_WAIT_SECONDS or (
                now - start >= FINAL_WAIT_SECONDS and not await self._scan_runs(scan_id)
            ):
                break
            await asyncio.sleep(0.01 if now - start < FINAL_WAIT_SECONDS else 0.1)
        return progress, aborted

    async def _scan_runs(self, scan_id: ScanId) -> bool:
        """Whether the scan record still shows this scan running (not stopped or replaced)."""
        try:
            current = await self.store.get_scan()
        except REDIS_UNAVAILABLE:
            return False
        return current is not None and current.scan_id == scan_id and not current.stopped

    async def _still_alive(self, pending: set[str], scan: ScanInfo) -> set[str]:
        """Stop waiting for workers that died, left the scan, or never joined it.

        A worker joins a scan through the store, and only while the scan record says it runs
        (:meth:`Store.join_scan`); so once the controller marked the scan stopped or replaced
        it, a worker that has not joined never will, and never sends ``worker_done``. One that
        did join sends it when it leaves, whatever it does afterwards.
        """
        workers = {
            c.name: c for c in await self.store.components() if c.kind == ComponentKind.worker
        }
        current = await self.store.get_scan()
        in_scan = set(current.workers) if current and current.scan_id == scan.scan_id else pending
        for gone in pending - (workers.keys() & in_scan):
            logger.error("worker %s is gone; not waiting for its remaining results", gone)
        pending = pending & workers.keys() & in_scan
        if current is None or current.scan_id != scan.scan_id or current.stopped:
            joined = await self.store.joined(scan.scan_id)
            # a registry entry naming the scan is a join too (the set is gone if Redis restarted)
            never = {n for n in pending if n not in joined and workers[n].scan_id != scan.scan_id}
            if never:
                logger.warning(
                    "scan %s ended before workers %s joined it; not waiting for them",
                    scan.scan_id,
                    ", ".join(sorted(never)),
                )
                pending -= never
        return pending

    def _process_batch(self, results: list[Results]) -> None:
        left = sum(len(items) for _, items in results)
        for header, items in results:
            self.stats.set_queue_depth(left)  # this message's results and those after it
            left -= len(items)
            self._process(header, items)
        self.stats.set_queue_depth(0)

    def _process(self, header: ResultHeader, items: list[ResultItem]) -> None:
        """``process_result`` for each result of one message (per result: its locals here)."""
        calls = self.calls
        assert calls is not None
        process, begin, end, live = (
            calls.process_result,
            self.stats.begin,
            self.stats.end,
            self.live,
        )
        worker, parameters_hash = header.worker, header.parameters_hash
        for item in items:
            try:
                # Results come from this pipeline's own workers over its private data plane.
                payload = pickle.loads(item.body)
            except Exception as exc:
                logger.error("result of event %s cannot be unpickled: %s", item.event_number, exc)
                self.failures.append(f"event {item.event_number}: {type(exc).__name__}: {exc}")
                continue
            result = trusted(
                ResultData,
                {
                    "event_number": item.event_number,
                    "worker": worker,
                    "parameters_hash": parameters_hash,
                    "payload": payload,
                    "redelivered": item.redelivered,
                },
            )
            self.results += 1
            started = begin()
            try:
                outcome = process(result, live.current)
            finally:
                end(started)
            if outcome.failure is not None:
                logger.error(
                    "process_result failed for event %s\n%s", item.event_number, outcome.traceback
                )
                self.failures.append(f"event {item.event_number}: {outcome.failure}")

    def _timer(self) -> None:
        assert self.calls is not None
        outcome = self.calls.call_timer(self.live.current, time.monotonic())
        if outcome.failure is not None:
            logger.error("reducer timer failed\n%s", outcome.traceback)
            self.failures.append(f"timer: {outcome.failure}")

    def _finish(self) -> None:
        if self.calls is not None:
            outcome = self.calls.finish(self.live.current)
            if outcome.failure is not None:
                logger.error("reducer finish failed\n%s", outcome.traceback)
                self.failures.append(f"finish: {outcome.failure}")

"""The worker: assembles full events from the ingesters' partial events and runs the payload.

The worker learns from the assignment stream which events are its own and which streams each
carries; partial events arriving before their assignment wait in a buffer. The payload runs in one
dedicated thread (:mod:`dranspose.runtime.payload_thread`) so the event loop keeps receiving,
heart-beating and reporting while a slow ``process_event`` computes: ready events go to it through
one queue, the outcome of each batch comes back through another, which the report loop drains.
Completions go to the controller in batches together with the request for more work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from typing import Any, Optional

import zmq
import zmq.asyncio

from dranspose.core.backpressure import DEFAULT_BUFFER_BYTES, HeldEvents
from dranspose.core.calling import WorkerCalls
from dranspose.core.coordination import (
    AssignedRun,
    ComponentInfo,
    ComponentKind,
    FailedEvent,
    ScanInfo,
    WorkerReport,
)
from dranspose.core.event import StreamData
from dranspose.core.payload import WorkerPayload, import_class
from dranspose.core.protocol import (
    BuildGitMeta,
    EventNumber,
    StreamName,
    WorkerName,
    WorkerState,
    WorkerTag,
)
from dranspose.core.stats import QueueStats
from dranspose.io.dataplane import Inbox, PartialBatch, ThreadOutbox, decode_partial
from dranspose.io.store import Store
from dranspose.runtime.component import CONTROLLER_GRACE_SECONDS, Component, LiveParameters
from dranspose.runtime.logs import bind_component
from dranspose.runtime.payload_thread import PayloadThread, Refill, ScanWork
from dranspose.runtime.session import ScanWatcher, Sorted, follow_assignments

logger = logging.getLogger(__name__)

REPORT_INTERVAL = 0.02
"""The report loop looks at the queue (and asks for work) at least this often."""
COMPLETIONS_INTERVAL = 0.05
"""Completions are reported at most this often (unless a request for work goes anyway): the
controller's account lags by at most this much, and a scan's end by as much."""
MIN_QUEUE = 4
CAPACITY = 1024
"""Events a worker holds at most, however fast it is (its byte budget may allow fewer). With
256, a fast worker asked every 64 events, and at 2 kB the Redis round trips of the requests
held the ingester up (bench/throughput.py: about 10 % more events/s with 1024)."""
QUEUE_SECONDS = 0.25
"""A worker asks for enough events to keep it busy this long at its measured rate."""
REDUCER_LOOKUP_SECONDS = 0.2
"""How often a scan that began before any reducer registered looks for one."""


class Worker(Component):
    def __init__(
        self,
        store: Store,
        worker_class: Any,
        name: str,
        tags: Optional[list[str]] = None,
        capacity: int = CAPACITY,
        bind: str = "tcp://*:0",
        advertise_host: str = "127.0.0.1",
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        build_meta: Optional[BuildGitMeta] = None,
        controller_grace: float = CONTROLLER_GRACE_SECONDS,
    ) -> None:
        super().__init__(
            store,
            ComponentInfo(kind=ComponentKind.worker, name=name, tags=tags or ["generic"]),
            build_meta,
            controller_grace,
        )
        self.worker_class = import_class(worker_class)
        self.capacity = capacity
        self.buffer_bytes = buffer_bytes
        """Byte budget of received, unprocessed frames: limits how many events it asks for."""
        self.ctx = zmq.asyncio.Context()
        self.inbox = Inbox(self.ctx, bind, advertise_host)
        self.info.url = self.inbox.url
        self.live = LiveParameters.for_classes(store, self.worker_class)
        self.context: dict[str, Any] = {}
        self.executor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"payload-{name}", initializer=bind_component, initargs=(name,)
        )
        self.scans: ScanWatcher[PartialBatch] = ScanWatcher(self, self.joins, record_join=True)
        """Its scans; keeps frames of a scan not joined yet, read while it finished the previous."""
        self.start_target = MIN_QUEUE
        """The queue target a scan starts with: a quarter of the highest one the previous scan
        measured; the first request doubles it (nothing is queued yet), the next ones follow the
        rate. Scans follow each other with the same payload: starting from MIN_QUEUE each time
        made the first ~100 ms of a fast scan wait on request round trips while the queue grew,
        and asking for the whole measured queue at once made them wait for the controller to
        assign a thousand events (bench/throughput.py --paced: the p99 at half the saturated
        rate came from there)."""

    def parameters_hash(self) -> Optional[str]:
        return self.live.current.hash

    def joins(self, scan: ScanInfo) -> bool:
        """A running scan that names this worker and began with this process."""
        return not scan.stopped and self.info.name in scan.workers and scan.takes_part(self.info)

    async def main(self) -> None:
        await self.live.publish_descriptions(f"worker:{self.info.name}")
        watcher = asyncio.create_task(self.live.watch(lambda: self.stopping))
        try:
            await self.scans.join_each(lambda scan: WorkerScan(self, scan).take_part())
        finally:
            watcher.cancel()
            self.inbox.close()
            self.executor.shutdown(wait=False)
            self.ctx.term()

    async def redis_restarted(self) -> None:
        await self.live.publish_descriptions(f"worker:{self.info.name}")

    async def reducer_url(self) -> Optional[str]:
        for comp in await self.store.components():
            if comp.kind == ComponentKind.reducer and comp.url:
                return comp.url
        return None


class WorkerScan:
    """One worker's part of one scan: the event loop's side of it.

    It owns the assembly of events (``expected``, ``buffers``, ``sizes``), the byte budget, the
    queue target and the reports; the payload thread owns the payload. Ready events go to the
    thread through :attr:`PayloadThread.ready`; what a batch completed, failed and released
    comes back through :attr:`PayloadThread.outcomes`, collected by :meth:`_collect`.
    """

    def __init__(self, worker: Worker, scan: ScanInfo) -> None:
        self.worker = worker
        self.scan = scan
        self.scan_id = scan.scan_id
        self.name = WorkerName(worker.info.name)
        self.expected: dict[int, frozenset[StreamName]] = {}
        self.buffers: dict[int, dict[StreamName, StreamData]] = {}
        self.sizes: dict[int, int] = {}
        """Bytes of the frames received for each buffered event."""
        self.redelivered: set[int] = set()
        """Events of a dead worker assigned here again (their results are marked so)."""
        self.ask_pending_since: Optional[float] = None
        self.target = worker.start_target
        self.measured_target = 0
        """The highest target this scan measured from its rate (0: none measured yet)."""
        self.rate_since = time.monotonic()
        self.processed_before = 0
        """Events the payload thread had processed when the rate was last measured."""
        self.wake = asyncio.Event()
        self.last_event = scan.n_events - 1
        self.held = HeldEvents(worker.buffer_bytes)
        self.thread: Optional[PayloadThread] = None
        """Processes ready events and sends their results (created once the payload exists)."""
        self.refill = Refill(self._wake_threadsafe)
        self.handed = 0
        """Events put in the payload thread's ready queue."""
        self.processed = 0
        """Events whose outcome came back from the payload thread."""
        self.completed: list[EventNumber] = []
        """Completions not reported yet (collected from the thread's outcomes)."""
        self.failed: list[FailedEvent] = []
        self.closing = False
        """The payload thread is done with this scan: later frames are the next scan's."""
        self.aborted: Optional[str] = None
        """Why this worker's part was cut short (no controller, the record gone, an abort)."""
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        worker.stats.queues = self.queue_stats

    def _wake_threadsafe(self) -> None:
        """Called by the payload thread: look at the queue now (it may ask for more events)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.wake.set)

    def queue_stats(self) -> QueueStats:
        assigned = len(self.expected.keys() | self.buffers.keys()) + self.handed - self.processed
        return QueueStats(events_queued=assigned, buffered_bytes=self.held.bytes)

    async def take_part(self) -> None:
        worker = self.worker
        worker.info.scan_id = self.scan.scan_id
        worker.info.state = "scanning"
        await worker.live.adopt_published_descriptions()
        params = worker.live.current
        state = WorkerState(
            name=self.name,
            dranspose_version=worker.info.dranspose_version,
            mapreduce_version=worker.info.mapreduce_version,
            tags={WorkerTag(t) for t in worker.info.tags},
            **worker.payload_state_fields(),
        )
        self._loop = loop = asyncio.get_running_loop()
        payload = await loop.run_in_executor(
            worker.executor,
            lambda: WorkerPayload(worker.worker_class, params, worker.context, state),
        )
        outbox = ThreadOutbox(
            zmq.Context.shadow(worker.ctx.underlying),
            await worker.reducer_url(),
            lambda: worker.stopping,
        )
        work = ScanWork(
            worker=self.name,
            scan_id=self.scan_id,
            calls=WorkerCalls(payload, self.name),
            stats=worker.stats,
            current_parameters=lambda: worker.live.current,
            outbox=outbox,
            # With re-delivery a dead worker's events may still come after the last event: stay
            # until the controller says every event is accounted for (``scan.complete``).
            last_event=None if self.scan.retry_lost else EventNumber(self.last_event),
        )
        self.thread = thread = PayloadThread(work, self.refill)
        coroutines = [self._read_assignments(), self._receive(), self._report_loop()]
        if not outbox.has_peer:
            coroutines.append(self._look_for_reducer(outbox))
        tasks = [asyncio.create_task(c) for c in coroutines]
        try:
            await loop.run_in_executor(worker.executor, thread.process_scan)
        except asyncio.CancelledError:
            thread.abandon()  # the thread must not wait for events that will never come
            raise
        finally:
            for task in tasks:
                task.cancel()
            worker.stats.queues = None
            if self.measured_target:
                worker.start_target = max(MIN_QUEUE, self.measured_target // 4)
            self._collect()
            try:
                await self._report(final=True)
            except Exception as exc:  # the controller counts the events of a dead worker lost
                logger.warning("worker %s: final report failed: %s", self.name, exc)
            worker.info.state = "aborted" if self.aborted else "idle"

    async def _look_for_reducer(self, outbox: ThreadOutbox) -> None:
        """No reducer was registered when the scan began: look for one until it is, and give
        its address to the payload thread's outbox (results before it are dropped, and said so)."""
        while True:
            await asyncio.sleep(REDUCER_LOOKUP_SECONDS)
            try:
                url = await self.worker.reducer_url()
            except Exception as exc:
                logger.error("worker %s: cannot look up the reducer: %s", self.name, exc)
                continue
            if url is not None:
                outbox.connect_later(url)
                return

    async def _read_assignments(self) -> None:
        """Follow the assignments until the scan is over, or this worker aborts its part (then
        the payload thread processes what it holds, ``finish`` runs, the reducer hears done)."""
        worker = self.worker
        self.aborted = await follow_assignments(
            worker.store,
            self.scan_id,
            f"worker {self.name}",
            self._assigned,
            self._in,
            worker.controller_missing,
        )
        assert self.thread is not None
        self.thread.ready.put(None)  # tell the payload thread the scan ended

    async def _assigned(self, runs: list[AssignedRun], answered: set[str]) -> None:
        name, expected, buffers = self.name, self.expected, self.buffers
        for run in runs:
            mine = frozenset(s for s, names in run.streams.items() if name in names)
            if not mine:
                continue  # another worker's events: nothing to do per event
            events = run.events()
            if run.redelivered:  # a dead worker's events, sent again
                self.redelivered.update(events)
            expected.update(dict.fromkeys(events, mine))
            # events whose frames came first are ready now; look from the smaller side (a run
            # may be a thousand events, while frames usually follow their assignment)
            if len(buffers) < len(events):
                arrived = sorted(number for number in buffers if number in events)
            else:
                arrived = [number for number in events if number in buffers]
            for number in arrived:
                self._check(number)
        if name in answered:
            self.ask_pending_since = None
            self.wake.set()  # the answer came: ask again now if the queue is still short

    async def _in(self, scan: ScanInfo) -> bool:
        if self.name in scan.workers:
            return True
        # declared dead while cut off or stalled: its events are already reported lost and the
        # scan goes on without it, so leave instead of waiting for its end
        logger.warning(
            "worker %s was dropped from scan %s (declared dead); leaving it",
            self.name,
            self.scan.scan_id,
        )
        return False

    async def _receive(self) -> None:
        worker = self.worker
        for batch in worker.scans.early():
            self._accept(batch)
        # Stops once the session finishes: later frames are the next scan's and stay queued in
        # the inbox (backpressure) for the next session instead of being read and dropped here.
        while not self._collect():
            for parts in await worker.inbox.recv_batch(100):
                try:
                    scan_id, batch = decode_partial(parts)
                except Exception as exc:
                    logger.error("malformed data-plane message dropped: %s", exc)
                    continue
                # a later scan's frames (the ingesters already serve it) are kept for it
                where = worker.scans.sort(scan_id, batch)
                if where is Sorted.CURRENT:
                    self._accept(batch)
                elif where is Sorted.LEFT:
                    logger.debug("dropping frames of scan %s", scan_id)

    def _accept(self, batch: PartialBatch) -> None:
        stream, buffers, sizes, check = batch.stream, self.buffers, self.sizes, self._check
        total = 0
        for number, data, size in batch.events:
            streams = buffers.get(number)
            if streams is None:
                buffers[number] = {stream: data}
            else:
                streams[stream] = data
            sizes[number] = sizes.get(number, 0) + size
            total += size
            check(number)
        self.held.received(total)

    def _check(self, number: int) -> None:
        wanted = self.expected.get(number)
        if wanted is None:
            return
        streams = self.buffers.get(number)
        if streams is not None and wanted <= streams.keys():
            del self.expected[number]
            assert self.thread is not None
            self.thread.ready.put(
                (
                    number,
                    self.buffers.pop(number),
                    self.sizes.pop(number, 0),
                    number in self.redelivered,
                )
            )
            self.handed += 1

    def _collect(self) -> bool:
        """Take the payload thread's outcomes: completions and failures to report, processed
        frames' bytes freed from the budget. Whether the thread is done with the scan."""
        thread = self.thread
        if thread is None or self.closing:
            return self.closing
        outcomes = thread.outcomes
        released: list[int] = []
        while not outcomes.empty():
            outcome = outcomes.get_nowait()
            if outcome is None:
                self.closing = True
                break
            self.completed.extend(outcome.completed)
            self.failed.extend(outcome.failed)
            released.extend(outcome.released)
        if released:
            self.processed += len(released)
            self.held.processed(released)
        return self.closing

    def _queue_target(self) -> int:
        """How many events to hold: enough for QUEUE_SECONDS at the measured rate.

        A fresh worker holds few, so a short scan spreads over all workers; a fast one grows its
        queue (up to ``capacity``) so requests, and Redis round trips, stay rare.
        """
        now = time.monotonic()
        elapsed = now - self.rate_since
        if elapsed >= 0.2:
            processed = self.processed
            rate = (processed - self.processed_before) / elapsed
            self.target = int(min(max(rate * QUEUE_SECONDS, MIN_QUEUE), self._capacity()))
            self.measured_target = max(self.measured_target, self.target)
            self.rate_since, self.processed_before = now, processed
        return self.target

    def _capacity(self) -> int:
        return self.held.max_events(self.worker.capacity)

    def _want(self) -> int:
        """How many events to ask for: refill to the target once a quarter of it is used up.

        One request at a time: the next goes out when assignments answered it (or after a
        second, in case the answer was nothing to assign yet). Not while no controller holds the
        lock, and not within a second of a new holder: the open request waits for the successor,
        which answers it, and asking again meanwhile would have it answer twice.
        """
        target = self._queue_target()
        # the batch in process_event (at most the target) is not counted: asking while it runs
        # keeps the worker busy, and it bounds what is held to twice the target
        queued = len(self.expected) + (self.thread.ready.qsize() if self.thread else 0)
        if queued == 0 and self.ask_pending_since is None:
            # starved: grow like TCP slow start, so a fast worker reaches large batches within a
            # few requests (the rate measured every 0.2 s then sets the target)
            self.target = target = min(target * 2, self._capacity())
        want = target - queued
        # the payload thread wakes this loop when the worker is about to starve
        self.refill.low_water = max(target // 4, 1) - len(self.expected)
        if want < max(target // 4, 1):
            return 0
        pending = self.ask_pending_since
        if pending is not None and (
            time.monotonic() - max(pending, self.worker.controller_since) < 1.0
            or self.worker.controller_lost
        ):
            return 0
        return want

    async def _report(self, final: bool = False, completions_due: bool = True) -> None:
        """Store a report: a request for ``want`` more events, and the completions and failures
        since the last one. Unless it asks for work (or is the final one), it is sent only when
        ``completions_due``: at moderate rates a report per processed batch would cost a Redis
        round trip and a controller wake-up per event."""
        want = 0 if final else self._want()
        if not (final or want or (completions_due and (self.completed or self.failed))):
            return
        if want:
            self.ask_pending_since = time.monotonic()
            self.refill.low_water = -1  # no wake-ups until the answer came
        # clear what was reported only once it is in Redis: a cancelled report is resent
        completed, failed = len(self.completed), len(self.failed)
        report = WorkerReport(
            worker=self.name,
            want=want,
            completed=self.completed[:completed],
            failed=self.failed[:failed],
            final=final,
        )
        await self.worker.store.report(self.scan_id, report)
        del self.completed[:completed]
        del self.failed[:failed]

    async def _report_loop(self) -> None:
        """Ask for work as soon as the queue needs it (the payload thread wakes this loop when
        its queue runs low); report completions at most every COMPLETIONS_INTERVAL."""
        reported = 0.0
        while True:
            self._collect()
            now = time.monotonic()
            due = now - reported >= COMPLETIONS_INTERVAL
            try:
                sent = bool(self.completed or self.failed)
                await self._report(completions_due=due)
                if due and sent:
                    reported = now
            except Exception as exc:  # Redis unreachable: what was not stored is sent again
                logger.warning("worker %s: report failed, retrying: %s", self.name, exc)
            try:
                await asyncio.wait_for(self.wake.wait(), REPORT_INTERVAL)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()

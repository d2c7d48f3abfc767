"""One ingester's part in one scan: pair upstream messages with assigned events and send them.

The k-th message of the scan's series goes with the k-th event the assignments give this stream
(:class:`AssignmentQueue`); the ingester waits for an event's assignment before sending, which
with a PULL upstream is backpressure, not loss. What happens to one message, in order:

1. a keep-alive (``SKIP``) is counted and dropped;
2. a series start read after the scan was stopped or replaced is the next scan's: it is carried
   over (``Ingester.carried``) to that scan's session, and this one ends;
3. until the series starts, messages are discarded (:class:`~dranspose.core.series.SeriesGate`);
4. it takes the next assignment (waiting for one, the batch sent first so that no frame waits
   with it); the scan ending meanwhile carries the message over as in 2;
5. with ``retry_lost`` its frames are kept for re-delivery and a destination that died is
   replaced (:class:`~dranspose.core.redelivery.Redelivery`);
6. it joins the batch (:class:`~dranspose.core.batch.EventBatch`), which is sent when full, when
   the next event goes to other workers, or when the upstream has nothing more waiting;
7. it is written to the dump, if there is one.

The pieces that decide (batch, series gate, re-delivery buffer) are pure and tested on their
own; this module holds the sockets' side and the loop. The loop is the ingester's hot path:
each step above is inline or one call, and only for the messages it concerns.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Sequence

from dranspose.core.backpressure import WaitClock
from dranspose.core.batch import EventBatch
from dranspose.core.coordination import AssignedRun, FailedEvent, ScanInfo, WorkerReport
from dranspose.core.event import InternalWorkerMessage, StreamData
from dranspose.core.protocol import EventNumber, ScanId, WorkerName
from dranspose.core.redelivery import KEEP_BYTES, KEEP_EVENTS, Redelivery
from dranspose.core.series import SeriesGate
from dranspose.io.capture import CaptureWriter
from dranspose.io.dataplane import PartialHeader
from dranspose.io.store import UNAVAILABLE as REDIS_UNAVAILABLE
from dranspose.protocols.registry import Kind
from dranspose.runtime.session import follow_assignments

if TYPE_CHECKING:
    from dranspose.runtime.ingester import Ingester

logger = logging.getLogger(__name__)

WAIT_SECONDS = 0.1
"""Longest the forwarding loop waits for upstream before looking at the scan again."""

Assignment = tuple[int, list[WorkerName]]
"""An event of this stream and the workers its frames go to (``[]``: read and dropped)."""


class AssignmentQueue:
    """This stream's assigned events not forwarded yet, in event order, and the wait for more.

    The assignment reader fills it; the forwarding loop takes from :attr:`queue` directly while
    it has events (the hot path) and calls :meth:`next` only when it is empty.
    """

    def __init__(self, waiting: WaitClock, stopping: Callable[[], bool]) -> None:
        self.queue: collections.deque[Assignment] = collections.deque()
        self.arrived = asyncio.Event()
        self.ended = False
        """The scan is over for this stream: no more assignments will come."""
        self.waiting = waiting
        """Time spent holding a message no worker has asked for yet (backpressure)."""
        self.stopping = stopping

    def extend(self, events: Iterable[int], workers: list[WorkerName]) -> None:
        """Events (of one run) whose frames go to ``workers``; :meth:`wake` the loop after."""
        self.queue.extend(zip(events, itertools.repeat(workers)))

    def wake(self) -> None:
        self.arrived.set()

    def end(self) -> None:
        self.ended = True
        self.arrived.set()

    async def next(self) -> Optional[Assignment]:
        """The next assignment, waiting for it; None when the scan ends or the ingester stops
        first."""
        waiting = self.waiting
        try:
            while not self.queue:
                if self.ended or self.stopping():
                    return None
                waiting.start()
                self.arrived.clear()
                await self.arrived.wait()
        finally:
            waiting.stop()
        return self.queue.popleft()


class IngesterSession:
    """One ingester's part in one scan (see the module's docstring for a message's way)."""

    def __init__(self, ingester: Ingester, scan: ScanInfo, dump: Optional[CaptureWriter]) -> None:
        self.ingester = ingester
        self.scan = scan
        self.scan_id = ScanId(scan.scan_id)
        self.dump = dump
        self.assignments = AssignmentQueue(ingester.waiting, lambda: ingester.stopping)
        self.members = set(scan.workers)
        """Workers still in the scan: the controller drops dead ones (their events are lost)."""
        self.redelivery = Redelivery()
        """Used with ``retry_lost`` only."""
        self.batch = EventBatch()
        self.gate = SeriesGate(
            ingester.stream, ingester.upstream_state, ingester.protocol.series_start
        )
        self.header = PartialHeader(scan.scan_id, ingester.stream, ingester.typ)
        self.urls: dict[str, str] = {}
        """Workers' data-plane addresses, read again when a worker is not in it."""
        self.aborted: Optional[str] = None
        """Why this ingester's part was cut short (no controller, the record gone, an abort)."""

    async def take_part(self) -> None:
        """Forward the scan's series; with ``retry_lost``, serve re-deliveries until the scan is
        complete, stopped or replaced."""
        ing = self.ingester
        ing.info.scan_id = self.scan.scan_id
        ing.info.state = "scanning"
        self.urls = await ing.worker_urls()
        reader = asyncio.create_task(self._read_assignments())
        try:
            await self._forward()
            if self.scan.retry_lost and not ing.stopping:
                # re-deliveries may come after the last event was forwarded: serve them until
                # the scan is complete, stopped or replaced (the reader returns then)
                stopping = asyncio.create_task(ing.until_stopped())
                await asyncio.wait([reader, stopping], return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
        finally:
            reader.cancel()
            self.gate.report_discarded()
            ing.info.state = "aborted" if self.aborted else "idle"

    async def _read_assignments(self) -> None:
        """Follow the assignments until the scan is over or this ingester aborts its part: the
        forwarding loop then stops at the next message without an assignment (it held that
        message, and read no further upstream, while it waited for one)."""
        ing = self.ingester
        self.aborted = await follow_assignments(
            ing.store,
            self.scan_id,
            f"ingester {ing.info.name} (stream {ing.stream})",
            self._assigned,
            self._still_in,
            ing.controller_missing,
        )
        self.assignments.end()

    async def _assigned(self, runs: list[AssignedRun], answered: set[str]) -> None:
        stream = self.ingester.stream
        for run in runs:
            workers = run.streams.get(stream)
            if workers is None:
                continue  # no frame of this stream in these events
            if run.redelivered:
                for event in run.events():
                    await self._redeliver(event, workers)
            else:
                self.assignments.extend(run.events(), workers)
        self.assignments.wake()

    async def _still_in(self, scan: ScanInfo) -> bool:
        """Follow the scan's members (the controller drops dead workers) and confirmations."""
        self.members = set(scan.workers)
        if self.scan.retry_lost:
            self.redelivery.forget_below(await self.ingester.store.confirmed(self.scan_id))
        return True

    async def _still_current(self) -> bool:
        try:
            scan = await self.ingester.store.get_scan()
        except REDIS_UNAVAILABLE:
            return True  # nothing says otherwise; the assignment reader decides when it is back
        return scan is not None and scan.scan_id == self.scan_id and not scan.stopped

    async def _forward(self) -> None:
        """Read the upstream and send each message of the series to its event's workers, until
        the scan's last event, the scan's end or the ingester's stop.

        The hot path (per message: a few attribute reads, the batch's ``add``): what the loop
        uses is held in locals, and each piece is asked only for the messages it concerns.
        """
        ing = self.ingester
        upstream, state, stats, stream = ing.upstream, ing.upstream_state, ing.stats, ing.stream
        assignments, gate, batch, dump = self.assignments, self.gate, self.batch, self.dump
        queue = assignments.queue
        redelivery = self.redelivery if self.scan.retry_lost else None
        last_event = self.scan.n_events - 1
        while not ing.stopping and not assignments.ended:
            item = ing.carried
            ing.carried = None
            if item is None:
                item = upstream.take()
                if item is None:
                    await self._flush()  # nothing more back to back: send what was read
                    await upstream.wait(WAIT_SECONDS)
                    continue
            kind, frames, size = item
            stats.ingested(stream, frames, size)
            if kind is Kind.SKIP:
                state.skipped += 1
                continue
            if kind is Kind.START and not await self._still_current():
                # A series that starts after this scan was stopped or replaced is the next
                # scan's: keep its header for that scan's session instead of consuming it here.
                ing.carried = item
                break
            if not gate.open and not gate.admit(kind is Kind.START):
                continue
            if queue:
                assigned: Optional[Assignment] = queue.popleft()
            else:
                await self._flush()  # do not hold read frames while waiting for assignments
                assigned = await assignments.next()
            if assigned is None:
                # The scan ended while this message waited for its event: the next session gets
                # it (and discards it, unless it opens that scan's series).
                ing.carried = item
                break
            event, destinations = assigned
            workers: Sequence[str] = destinations
            if redelivery is not None:
                workers = redelivery.forwarded(event, workers, self.members, frames, size)
            if batch.events and workers != batch.workers:
                await self._flush()  # the batch goes to other workers
            if batch.add(event, workers, frames, size):
                await self._flush()
            if dump is not None:
                self._write_dump(dump, event, frames)
            if event >= last_event:
                break
        await self._flush()
        if dump is not None:
            dump.flush()

    def _write_dump(self, dump: CaptureWriter, event: int, frames: list[Any]) -> None:
        """The event as a worker would receive it from this stream alone (``--dump``)."""
        ing = self.ingester
        dump.write(
            InternalWorkerMessage.model_construct(
                event_number=EventNumber(event),
                streams={ing.stream: StreamData.model_construct(typ=ing.typ, frames=frames)},
                created_at=time.time(),
            )
        )

    async def _flush(self) -> None:
        batch = self.batch
        if batch.events:
            events = batch.take()
            # counted per batch: the state is a pydantic model, an assignment a Python call
            self.ingester.upstream_state.forwarded += len(events)
            await self._send(events, batch.workers)

    async def _redeliver(self, event: int, targets: list[WorkerName]) -> None:
        """Send a dead worker's frames of one event to its replacement (``retry_lost``)."""
        if self.redelivery.reroute(event, targets):
            return  # not read from upstream yet: it goes there too when it is
        frames = self.redelivery.frames(event)
        if frames is not None:
            await self._send([(event, frames)], targets)
            return
        name = self.ingester.info.name
        reason = (
            f"stream {self.ingester.stream}: frames of event {event} no longer kept "
            f"for re-delivery (limits {KEEP_EVENTS} events, {KEEP_BYTES} bytes)"
        )
        logger.error(reason)
        lost = FailedEvent(event_number=EventNumber(event), worker=name, reason=reason)
        await self.ingester.store.report(
            self.scan_id, WorkerReport(worker=WorkerName(name), lost=[lost])
        )

    async def _send(self, events: list[tuple[int, list[Any]]], workers: Sequence[str]) -> None:
        """Send the frames of these events, in one message, to each of ``workers``."""
        ing = self.ingester
        parts = self.header.message(events)
        first, last = events[0][0], events[-1][0]
        which = f"event {first}" if first == last else f"events {first}..{last}"
        for worker in workers:
            url = await self._url(worker)
            if url is None:
                logger.error(
                    "%s: worker %s has no data address; frames not delivered", which, worker
                )
                continue
            if not await ing.outboxes.send(
                url, parts, give_up=functools.partial(self._gone, worker)
            ):
                logger.error(
                    "%s: worker %s left the scan while its queue was full; frames not delivered",
                    which,
                    worker,
                )

    async def _url(self, worker: str) -> Optional[str]:
        url = self.urls.get(worker)
        if url is None:
            self.urls = await self.ingester.worker_urls()
            url = self.urls.get(worker)
        return url

    def _gone(self, worker: str) -> bool:
        """Stop waiting for a worker that is out of the scan, or for a scan that is over."""
        return worker not in self.members or self.assignments.ended or self.ingester.stopping

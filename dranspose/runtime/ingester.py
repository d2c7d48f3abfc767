"""The ingester: reads one upstream stream and forwards each message to the workers the map names.

The k-th upstream message of a scan belongs to the k-th event in which the trigger map gives this
stream a frame (``null`` entries are skipped, ``[]`` entries are read and dropped). Assignments
arrive in event order from the controller; the ingester waits for an event's assignment before
sending, which with a PULL upstream is backpressure, not loss. Frames are forwarded as received
(``zmq.Frame``, no copy); all frames of one upstream multipart message stay together.

How the upstream is read (ZMQ PULL or SUB, TCP client, HTTP server), what is lost when nobody
reads and how connections come back is the transport's business (:mod:`dranspose.io.transports`);
its counters are reported in this component's registry entry (``info.upstream``).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import logging
import time
from typing import Any, Optional, Sequence

import zmq
import zmq.asyncio

from dranspose.core.backpressure import WaitClock
from dranspose.core.coordination import (
    AssignedRun,
    ComponentInfo,
    ComponentKind,
    FailedEvent,
    ScanInfo,
    WorkerReport,
)
from dranspose.core.event import InternalWorkerMessage, StreamData
from dranspose.core.protocol import (
    DUMP_PREFIX,
    BuildGitMeta,
    EventNumber,
    StreamName,
    WorkerName,
    as_uuid4,
)
from dranspose.core.stats import QueueStats
from dranspose.io.capture import CaptureWriter
from dranspose.io.dataplane import Outboxes, PartialHeader
from dranspose.io.store import UNAVAILABLE as REDIS_UNAVAILABLE
from dranspose.io.store import Store
from dranspose.io.transports import DEFAULT_BACKLOG, open_upstream
from dranspose.io.transports.base import Queued
from dranspose.protocols.registry import Kind, get_protocol
from dranspose.runtime.component import Component
from dranspose.runtime.session import ScanSessions, follow_assignments

logger = logging.getLogger(__name__)

_WAIT_SECONDS = 0.1
KEEP_EVENTS = 10_000
KEEP_BYTES = 256 * 1024 * 1024
"""With re-delivery on, frames of unconfirmed events are kept up to these limits (the oldest go
first); a re-delivery asking for frames no longer kept reports the event lost."""
"""Longest the forwarding loop waits for upstream before looking at the scan again."""
BATCH_EVENTS = 64
BATCH_BYTES = 1024 * 1024
"""Consecutive events for the same workers that the upstream delivered back to back go in one
data-plane message, up to these limits; a batch is sent as soon as the upstream has nothing
more waiting, so batching never holds a frame back to wait for the next."""


class Ingester(Component):
    def __init__(
        self,
        store: Store,
        stream: str,
        upstream: str,
        name: Optional[str] = None,
        protocol: str = "stins",
        dump: Optional[str] = None,
        sock_type: Optional[int] = None,
        backlog: int = DEFAULT_BACKLOG,
        build_meta: Optional[BuildGitMeta] = None,
    ) -> None:
        super().__init__(
            store,
            ComponentInfo(
                kind=ComponentKind.ingester,
                name=name or f"{stream}-ingester",
                streams=[StreamName(stream)],
            ),
            build_meta,
        )
        self.stream = StreamName(stream)
        self.upstream_url = upstream
        self.protocol = get_protocol(protocol)
        self.typ = self.protocol.typ
        self.dump_path = dump
        self.ctx = zmq.asyncio.Context(io_threads=2)  # receive and send large frames in parallel
        sub = None if sock_type is None else sock_type == zmq.SUB
        try:
            self.upstream = open_upstream(
                self.protocol, upstream, name=stream, ctx=self.ctx, sub=sub, backlog=backlog
            )
        except BaseException:
            self.ctx.term()
            raise
        self.upstream_state = self.upstream.state
        self.info.upstream = self.upstream_state
        self.outboxes = Outboxes(self.ctx)
        self.carried: Optional[Queued] = None
        """A message read during a scan that ended before it could be routed: the next scan's."""
        self._discarding = 0
        self.waiting = WaitClock()
        """Time spent holding a message no worker has asked for yet (backpressure)."""
        self.stats.queues = self.queue_stats

    def queue_stats(self) -> QueueStats:
        return QueueStats(
            backlog_messages=len(self.upstream.backlog),
            backlog_bytes=self.upstream.backlog_bytes,
            blocked_seconds=self.waiting.seconds + self.outboxes.blocked_seconds,
        )

    @property
    def forwarded(self) -> int:
        return self.upstream_state.forwarded

    @property
    def discarded(self) -> int:
        return self.upstream_state.discarded

    @property
    def skipped(self) -> int:
        return self.upstream_state.skipped

    def joins(self, scan: ScanInfo) -> bool:
        """A scan that reads this ingester's stream and began with this process."""
        return not scan.stopped and self.stream in scan.streams and scan.takes_part(self.info)

    async def main(self) -> None:
        dump = CaptureWriter(self.dump_path) if self.dump_path else None
        sessions: ScanSessions[None] = ScanSessions(self, self.joins)
        try:
            await self.upstream.start()
            await sessions.run(lambda scan: self._ingest(scan, dump))
        finally:
            if dump is not None:
                dump.close()
            await self.upstream.close()
            self.outboxes.close()
            self.ctx.term()

    async def _ingest(self, scan: ScanInfo, dump: Optional[CaptureWriter]) -> None:
        """One scan; without ``--dump``, dumped to a file of its own when the parameter
        ``dump_prefix`` is set, as the original dranspose's ingesters do."""
        own = await self._prefix_dump(scan) if dump is None else None
        try:
            await IngestSession(self, scan, dump or own).run()
        finally:
            if own is not None:
                own.close()

    async def _prefix_dump(self, scan: ScanInfo) -> Optional[CaptureWriter]:
        """``<dump_prefix><ingester>-<scan id>.cbors`` (the original's name), or ``None``."""
        _, raw = await self.store.get_parameters()
        prefix = raw.get(DUMP_PREFIX, b"").decode("utf8", "backslashreplace")
        if not prefix:
            return None
        scan_uuid = as_uuid4(scan.scan_id)
        path = f"{prefix}{self.info.name}-{scan_uuid or scan.scan_id}.cbors"
        try:
            return CaptureWriter(path)
        except OSError as exc:
            logger.error("ingester %s: cannot write the dump %s: %s", self.info.name, path, exc)
            return None

    async def worker_urls(self) -> dict[str, str]:
        return {
            c.name: c.url
            for c in await self.store.components()
            if c.kind == ComponentKind.worker and c.url
        }

    def discard(self) -> None:
        """Count a message that arrived before the series start; log the first of a run."""
        self.upstream_state.discarded += 1
        if not self._discarding:
            logger.warning(
                "stream %s: message before the series start discarded (the start "
                "was missed, or this is the rest of an earlier series); discarding "
                "until a series starts",
                self.stream,
            )
        self._discarding += 1

    def discard_ended(self) -> None:
        if self._discarding > 1:
            logger.warning(
                "stream %s: %d messages before the series start were discarded",
                self.stream,
                self._discarding,
            )
        self._discarding = 0


class IngestSession:
    """One ingester's part of one scan."""

    def __init__(self, ingester: Ingester, scan: ScanInfo, dump: Optional[CaptureWriter]) -> None:
        self.ingester = ingester
        self.scan = scan
        self.dump = dump
        self.queue: collections.deque[tuple[int, list[WorkerName]]] = collections.deque()
        """Assigned events not forwarded yet, in order, with this stream's destinations."""
        self.arrived = asyncio.Event()
        self.ended = False
        self.urls: dict[str, str] = {}
        self.header = PartialHeader(scan.scan_id, ingester.stream, ingester.typ)
        self.members = set(scan.workers)
        """Workers still in the scan: the controller drops dead ones (their events are lost)."""
        self.kept: collections.OrderedDict[int, tuple[list[Any], int]] = collections.OrderedDict()
        """With ``retry_lost``: frames (and their size) of forwarded, unconfirmed events."""
        self.kept_bytes = 0
        self.rerouted: dict[int, list[str]] = {}
        """Re-deliveries of events not forwarded yet: extra destinations for when they are."""
        self.forwarded_up_to = -1
        self.staged: list[tuple[int, list[Any]]] = []
        """Events read and routed but not sent yet: all to the workers ``staged_to``."""
        self.staged_to: Sequence[str] = ()
        self.staged_bytes = 0

    async def run(self) -> None:
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
                stopping = asyncio.create_task(ing._stopping.wait())
                await asyncio.wait([reader, stopping], return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
        finally:
            reader.cancel()
            ing.discard_ended()
            ing.info.state = "idle"

    async def _read_assignments(self) -> None:
        await follow_assignments(
            self.ingester.store,
            self.scan.scan_id,
            f"stream {self.ingester.stream}",
            self._assigned,
            self._still_in,
        )
        self.ended = True
        self.arrived.set()

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
                self.queue.extend(zip(run.events(), itertools.repeat(workers)))
        self.arrived.set()

    async def _still_in(self, scan: ScanInfo) -> bool:
        """Follow the scan's members (the controller drops dead workers) and confirmations."""
        self.members = set(scan.workers)
        if self.scan.retry_lost:
            self._forget_below(await self.ingester.store.confirmed(self.scan.scan_id))
        return True

    async def _next_assignment(self) -> Optional[tuple[int, list[WorkerName]]]:
        waiting = self.ingester.waiting
        try:
            while not self.queue:
                if self.ended or self.ingester.stopping:
                    return None
                waiting.start()
                self.arrived.clear()
                await self.arrived.wait()
        finally:
            waiting.stop()
        return self.queue.popleft()

    async def _url(self, worker: str) -> Optional[str]:
        url = self.urls.get(worker)
        if url is None:
            self.urls = await self.ingester.worker_urls()
            url = self.urls.get(worker)
        return url

    def _gone(self, worker: str) -> bool:
        """Stop waiting for a worker that is out of the scan, or for a scan that is over."""
        return worker not in self.members or self.ended or self.ingester.stopping

    def _keep(self, event: int, frames: list[Any]) -> None:
        size = sum(len(f.buffer) if isinstance(f, zmq.Frame) else len(f) for f in frames)
        self.kept[event] = (frames, size)
        self.kept_bytes += size
        while len(self.kept) > KEEP_EVENTS or (self.kept_bytes > KEEP_BYTES and len(self.kept) > 1):
            _, (_, dropped) = self.kept.popitem(last=False)
            self.kept_bytes -= dropped

    def _forget_below(self, confirmed: int) -> None:
        while self.kept and next(iter(self.kept)) < confirmed:
            _, (_, dropped) = self.kept.popitem(last=False)
            self.kept_bytes -= dropped

    async def _redeliver(self, event: int, targets: list[WorkerName]) -> None:
        """Send a dead worker's frames of one event to its replacement (``retry_lost``)."""
        if event > self.forwarded_up_to:  # not read from upstream yet: route it there when it is
            self.rerouted.setdefault(event, []).extend(targets)
            return
        kept = self.kept.get(event)
        if kept is None:
            reason = (
                f"stream {self.ingester.stream}: frames of event {event} no longer kept "
                f"for re-delivery (limits {KEEP_EVENTS} events, {KEEP_BYTES} bytes)"
            )
            logger.error(reason)
            await self.ingester.store.report(
                self.scan.scan_id,
                WorkerReport(
                    worker=WorkerName(self.ingester.info.name),
                    lost=[
                        FailedEvent(
                            event_number=EventNumber(event),
                            worker=self.ingester.info.name,
                            reason=reason,
                        )
                    ],
                ),
            )
            return
        await self._send([(event, kept[0])], targets)

    def _stage(self, event: int, workers: Sequence[str], frames: list[Any], size: int) -> bool:
        """Add an event to the batch (for the same workers as the batch, or a new batch);
        returns whether the batch is full and should be sent now."""
        self.staged.append((event, frames))
        self.staged_to = workers
        self.staged_bytes += size
        return len(self.staged) >= BATCH_EVENTS or self.staged_bytes >= BATCH_BYTES

    async def _flush(self) -> None:
        if self.staged:
            staged, self.staged, self.staged_bytes = self.staged, [], 0
            # counted per batch: the state is a pydantic model, an assignment a Python call
            self.ingester.upstream_state.forwarded += len(staged)
            await self._send(staged, self.staged_to)

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

    async def _still_current(self) -> bool:
        try:
            scan = await self.ingester.store.get_scan()
        except REDIS_UNAVAILABLE:
            return True  # nothing says otherwise; the assignment reader decides when it is back
        return scan is not None and scan.scan_id == self.scan.scan_id and not scan.stopped

    async def _forward(self) -> None:
        ing = self.ingester
        upstream = ing.upstream
        state = ing.upstream_state
        started = False
        last_event = self.scan.n_events - 1
        while not ing.stopping and not self.ended:
            item: Optional[Queued] = ing.carried
            ing.carried = None
            if item is None:
                item = upstream.take()
                if item is None:
                    await self._flush()  # nothing more back to back: send what was read
                    await upstream.wait(_WAIT_SECONDS)
                    continue
            kind, frames, size = item
            ing.stats.ingested(ing.stream, frames, size)
            if kind is Kind.SKIP:
                state.skipped += 1
                continue
            if kind is Kind.START and not await self._still_current():
                # A series that starts after this scan was stopped or replaced is the next
                # scan's: keep its header for that scan's session instead of consuming it here.
                ing.carried = item
                break
            if not started:
                if kind is not Kind.START and ing.protocol.name != "raw":
                    ing.discard()
                    continue
                ing.discard_ended()
                started = True
            if self.queue:
                assigned: Optional[tuple[int, list[WorkerName]]] = self.queue.popleft()
            else:
                await self._flush()  # do not hold read frames while waiting for assignments
                assigned = await self._next_assignment()
            if assigned is None:
                # The scan ended while this message waited for its event: the next session gets
                # it (and discards it, unless it opens that scan's series).
                ing.carried = item
                break
            event, destinations = assigned
            workers: Sequence[str] = destinations
            if self.scan.retry_lost:
                # a destination that died meanwhile is replaced by its re-delivery target
                workers = [w for w in workers if w in self.members] + self.rerouted.pop(event, [])
                self._keep(event, frames)
                self.forwarded_up_to = event
            if self.staged and workers != self.staged_to:
                await self._flush()  # the batch goes to other workers
            if self._stage(event, workers, frames, size):
                await self._flush()
            if self.dump is not None:
                self.dump.write(
                    InternalWorkerMessage.model_construct(
                        event_number=EventNumber(event),
                        streams={
                            ing.stream: StreamData.model_construct(typ=ing.typ, frames=frames)
                        },
                        created_at=time.time(),
                    )
                )
            if event >= last_event:
                break
        await self._flush()
        if self.dump is not None:
            self.dump.flush()

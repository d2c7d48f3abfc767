"""The worker's payload thread: runs ``process_event`` on ready events and sends their results.

The event loop of a worker receives frames, assembles events and coordinates through Redis; the
payload runs in a thread of its own so that a slow ``process_event`` never stalls heart-beats or
reception (and every payload call, from the constructor to ``finish``, happens in that one
thread). Handing each batch over and awaiting it back costs two thread wake-ups per batch
(``bench/handoff.py``: about 170 µs of CPU on a small virtual host), which at moderate rates,
where batches hold an event or two, was the largest cost of an event. So the thread here stays
in its own loop for the whole scan: it takes ready events from a queue (a wake-up only when it
had run dry), processes them in batches, sends the results to the reducer itself (an
:class:`~dranspose.io.dataplane.ThreadOutbox`), and leaves one :class:`BatchOutcome` per batch in
a second queue, which the event loop's report loop drains. The event loop waits for it once, at
the end of the scan.

What crosses the threads, and nothing else: :attr:`PayloadThread.ready` in (events, in order;
``None`` ends the scan), :attr:`PayloadThread.outcomes` out (a batch's completions, failures and
released bytes; ``None`` once the thread stops processing), the :class:`Refill` threshold the
loop sets and the thread compares the queue with (it then wakes the loop through
``call_soon_threadsafe``), and :meth:`PayloadThread.abandon`. Everything the thread needs for
the scan (:class:`ScanWork`, the reducer's address among it) is fixed before it starts.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import time
from typing import Any, Callable, NamedTuple, Optional, cast

from dranspose.core.calling import WorkerCalls, pickle_result
from dranspose.core.construct import trusted
from dranspose.core.coordination import FailedEvent, ResultHeader
from dranspose.core.event import EventData, StreamData
from dranspose.core.parameters import ParameterSet
from dranspose.core.protocol import EventNumber, ScanId, StreamName, WorkerName
from dranspose.core.stats import StatsRecorder
from dranspose.io.dataplane import ThreadOutbox, pack

logger = logging.getLogger(__name__)

BATCH_EVENTS = 64
"""Events processed between two sends to the reducer at most."""
BATCH_SECONDS = 0.05
"""A batch holds no more events than the payload processes in about this long (by its measured
time per event): a slow payload's completions and results then leave every few events instead of
after sixty, so progress and backpressure follow it closely."""

Ready = tuple[int, dict[StreamName, StreamData], int, bool]
"""A ready event: its number, its streams, the bytes of its frames, and whether it was
re-delivered (a dead worker's event, sent again). The number is a plain ``int``: an
:data:`EventNumber` by meaning, unwrapped per batch (a ``NewType`` call per event is not free)."""


class BatchOutcome(NamedTuple):
    """What one processed batch leaves for the event loop (one per batch, not per event)."""

    completed: list[EventNumber]
    """Events processed whose result (if any) is queued for the reducer."""
    failed: list[FailedEvent]
    released: list[int]
    """The bytes of the frames of every event of the batch, for the loop's buffer budget."""


@dataclasses.dataclass(frozen=True)
class ScanWork:
    """Everything the payload thread needs for one scan, fixed before it starts."""

    worker: WorkerName
    scan_id: ScanId
    calls: WorkerCalls
    stats: StatsRecorder
    current_parameters: Callable[[], ParameterSet]
    """The live parameter snapshot (immutable; swapped whole when a new version arrives)."""
    outbox: ThreadOutbox
    """The socket to the reducer; this thread alone sends on it and closes it."""
    last_event: Optional[EventNumber]
    """Stop after processing this event (None: only at the end marker)."""


class Refill:
    """When the payload thread wakes the event loop to ask for more events.

    The loop sets :attr:`low_water` as its queue target changes; the thread compares the ready
    queue with it after each batch. Waking the loop after every batch instead would cost a
    wake-up of the loop per batch, one or two events at moderate rates.
    """

    def __init__(self, wake: Callable[[], object]) -> None:
        self.low_water = 0
        """With this many ready events or fewer left after a batch, the loop is woken (-1:
        never; a plain int the loop writes and the thread reads)."""
        self._wake = wake

    def after_batch(self, queued: int) -> None:
        """Called by the thread after each batch with the events still queued."""
        if queued <= self.low_water:
            self._wake()


class PayloadThread:
    """One scan's processing loop; :meth:`process_scan` runs in the worker's payload thread."""

    def __init__(self, work: ScanWork, refill: Refill) -> None:
        self.work = work
        self.refill = refill
        self.ready: queue.SimpleQueue[Optional[Ready]] = queue.SimpleQueue()
        """In: events whose frames are all there, in order; ``None`` ends the scan."""
        self.outcomes: queue.SimpleQueue[Optional[BatchOutcome]] = queue.SimpleQueue()
        """Out: one outcome per batch; ``None`` once processing ended (``finish`` follows, and
        later frames belong to the next scan)."""
        self._abandoned = False
        self._event_seconds: Optional[float] = None
        """Running mean of the time one event takes in this thread (processing and sending)."""

    def abandon(self) -> None:
        """Called by the event loop: end :meth:`process_scan` without ``finish`` (the session
        was cancelled: the worker stops)."""
        self._abandoned = True
        self.ready.put(None)

    def process_scan(self) -> None:
        """Process ready events until the end marker (or the last event), then ``finish`` and
        tell the reducer this worker is done."""
        work = self.work
        ended_sent = False
        try:
            ended = False
            while not ended and not self._abandoned:
                batch, ended = self._take_batch()
                if batch:
                    self._process_batch(batch)
                    if work.last_event is not None and any(r[0] == work.last_event for r in batch):
                        ended = True
                    else:
                        self.refill.after_batch(self.ready.qsize())
            self.outcomes.put(None)  # before finish: the loop stops reading this scan's frames
            ended_sent = True
            if self._abandoned:
                return
            outcome = work.calls.finish(work.current_parameters())
            if outcome.failure is not None:
                logger.error("worker finish failed\n%s", outcome.traceback)
            done = ResultHeader(kind="worker_done", scan_id=work.scan_id, worker=work.worker)
            work.outbox.send([done.model_dump_json().encode()])
        finally:
            if not ended_sent:
                self.outcomes.put(None)
            work.outbox.close()

    def _take_batch(self) -> tuple[list[Ready], bool]:
        """The next batch of ready events (waits for the first), and whether the end marker
        came."""
        limit = self._batch_limit()
        batch: list[Ready] = []
        item = self.ready.get()
        while item is not None:
            batch.append(item)
            if len(batch) >= limit:
                return batch, False
            try:
                item = self.ready.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def _batch_limit(self) -> int:
        if self._event_seconds is None:
            return 1  # the first batch measures the payload
        return max(1, min(BATCH_EVENTS, int(BATCH_SECONDS / max(self._event_seconds, 1e-9))))

    def _process_batch(self, batch: list[Ready]) -> None:
        started = time.perf_counter()
        try:
            self._process_and_send(batch)
        finally:
            per_event = (time.perf_counter() - started) / len(batch)
            mean = self._event_seconds
            self._event_seconds = per_event if mean is None else mean + 0.2 * (per_event - mean)

    def _process_and_send(self, batch: list[Ready]) -> None:
        work = self.work
        params = work.current_parameters()
        bodies: list[Any] = []
        sent: list[int] = []
        again: list[int] = []
        done: list[int] = []
        failed: list[FailedEvent] = []
        # per event: locals, and no call that is not the payload's (this loop is the worker's
        # share of an event's cost)
        process, begin, end, now = (
            work.calls.process_event,
            work.stats.begin,
            work.stats.end,
            time.monotonic,
        )
        released = [r[2] for r in batch]
        try:
            for number, streams, _size, redelivered in batch:
                event = trusted(EventData, {"event_number": number, "streams": streams})
                started = begin()
                try:
                    outcome = process(event, params, now())
                finally:
                    end(started)
                failure = outcome.failure
                if failure is not None:
                    logger.error("event %d failed in process_event\n%s", number, outcome.traceback)
                elif outcome.value is not None:
                    pickled = pickle_result(outcome.value)
                    failure = pickled.failure
                    if failure is None:
                        bodies.append(pickled.value)
                        sent.append(number)
                        if redelivered:
                            again.append(number)
                if failure is not None:
                    failed.append(
                        FailedEvent(
                            event_number=EventNumber(number), worker=work.worker, reason=failure
                        )
                    )
                    continue
                done.append(number)
            if bodies:
                # one message per batch: one header, then the results (small ones packed)
                packed, frames = pack(bodies)
                header = ResultHeader(
                    scan_id=work.scan_id,
                    worker=work.worker,
                    parameters_hash=params.hash,
                    events=cast(list[EventNumber], sent),
                    redelivered_events=cast(list[EventNumber], again),
                    packed=packed,
                )
                work.outbox.send([header.model_dump_json().encode(), *frames])
        except BaseException:
            self.outcomes.put(BatchOutcome([], [], released))  # the frames are released anyway
            raise
        # completed only once its result is queued for the reducer
        self.outcomes.put(BatchOutcome(cast(list[EventNumber], done), failed, released))

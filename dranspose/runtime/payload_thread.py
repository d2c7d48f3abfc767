"""The worker's payload thread: runs ``process_event`` on ready events and sends their results.

The event loop of a worker receives frames, assembles events and coordinates through Redis; the
payload runs in a thread of its own so that a slow ``process_event`` never stalls heart-beats or
reception (and every payload call, from the constructor to ``finish``, happens in that one
thread). Handing each batch over and awaiting it back costs two thread wake-ups per batch
(``bench/handoff.py``: about 170 µs of CPU on a small virtual host), which at moderate rates,
where batches hold an event or two, was the largest cost of an event. So the thread here stays
in its own loop for the whole scan: it takes ready events from a queue (a wake-up only when it
had run dry), processes them in batches, sends the results to the reducer on a socket of its
own, and leaves completions where the event loop's report loop picks them up. The event loop
waits for it once, at the end of the scan.

What crosses the threads: the queue of ready events (and the end marker), lists the thread only
appends to and the loop only removes from the front of (completions, failures, released
bytes), plain counters only the thread writes, and a wake-up of the report loop when the queue
runs low (``want_more``), through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import logging
import queue
import time
from typing import Any, Callable, Optional, cast

import zmq

from dranspose.core.calling import WorkerCalls, pickle_result
from dranspose.core.construct import trusted
from dranspose.core.coordination import FailedEvent, ResultHeader
from dranspose.core.event import EventData, StreamData
from dranspose.core.parameters import ParameterSet
from dranspose.core.protocol import EventNumber, StreamName, WorkerName
from dranspose.core.stats import StatsRecorder
from dranspose.io.dataplane import GIVE_UP_CHECK_SECONDS, pack, send_message

logger = logging.getLogger(__name__)

BATCH_EVENTS = 64
"""Events processed between two sends to the reducer at most."""
BATCH_SECONDS = 0.05
"""A batch holds no more events than the payload processes in about this long (by its measured
time per event): a slow payload's completions and results then leave every few events instead of
after sixty, so progress and backpressure follow it closely."""

Ready = tuple[int, dict[StreamName, StreamData], int]
"""A ready event: its number, its streams, and the bytes of its frames."""


class PayloadThread:
    """One scan's processing loop; :meth:`run` runs in the worker's payload thread."""

    def __init__(
        self,
        name: WorkerName,
        scan_id: str,
        calls: WorkerCalls,
        stats: StatsRecorder,
        parameters: Callable[[], ParameterSet],
        reducer_url: Callable[[], Optional[str]],
        context: zmq.Context[Any],
        stopping: Callable[[], bool],
        want_more: Callable[[], object],
    ) -> None:
        self.name = name
        self.scan_id = scan_id
        self.calls = calls
        self.stats = stats
        self.parameters = parameters
        self.reducer_url = reducer_url
        """Looks the reducer up (from this thread); None while none is registered."""
        self.context = context
        self.stopping = stopping
        self.want_more = want_more
        """Asks the event loop to look at the queue now (it may request more events)."""
        self.ready: queue.SimpleQueue[Optional[Ready]] = queue.SimpleQueue()
        """Events whose frames are all there, in order; ``None`` ends the scan."""
        self.redelivered: set[int] = set()
        self.last: Optional[int] = None
        """Stop after processing this event (None: only at the end marker)."""
        self.completed: list[EventNumber] = []
        self.failed: list[FailedEvent] = []
        self.released: list[int] = []
        """Bytes of the frames of processed events, for the loop's buffer accounting."""
        self.processed = 0
        """Events processed so far in this scan."""
        self.in_process = 0
        self.low_water = 0
        """With this many ready events or fewer left after a batch, ``want_more`` is called."""
        self.done = False
        """The processing loop ended: later frames belong to the next scan."""
        self.abandoned = False
        self.event_seconds: Optional[float] = None
        """Running mean of the time one event takes in this thread (processing and sending)."""
        self._socket: Optional[zmq.Socket[bytes]] = None

    def abandon(self) -> None:
        """End :meth:`run` without ``finish`` (the session was cancelled: the worker stops)."""
        self.abandoned = True
        self.ready.put(None)

    def run(self) -> None:
        """Process ready events until the end marker (or the last event), then ``finish`` and
        tell the reducer this worker is done."""
        try:
            ended = False
            while not ended and not self.abandoned:
                batch, ended = self._take_batch()
                if batch:
                    self._process_batch(batch)
                    if self.last is not None and any(n == self.last for n, _, _ in batch):
                        ended = True
                    elif self.ready.qsize() <= self.low_water:
                        self.want_more()
            self.done = True  # before finish: the event loop stops reading this scan's frames
            if self.abandoned:
                return
            outcome = self.calls.finish(self.parameters())
            if outcome.failure is not None:
                logger.error("worker finish failed\n%s", outcome.traceback)
            done = ResultHeader(kind="worker_done", scan_id=self.scan_id, worker=self.name)
            self._send([done.model_dump_json().encode()])
        finally:
            self.done = True
            if self._socket is not None:
                self._socket.close(linger=2000)

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
        if self.event_seconds is None:
            return 1  # the first batch measures the payload
        return max(1, min(BATCH_EVENTS, int(BATCH_SECONDS / max(self.event_seconds, 1e-9))))

    def _reducer_socket(self) -> Optional[zmq.Socket[bytes]]:
        """This thread's socket to the reducer, connected on first use (None while no reducer
        is registered)."""
        if self._socket is None:
            url = self.reducer_url()
            if url is not None:
                self._socket = self.context.socket(zmq.PUSH)
                self._socket.setsockopt(zmq.SNDHWM, 1000)
                self._socket.connect(url)
        return self._socket

    def _process_batch(self, batch: list[Ready]) -> None:
        started = time.perf_counter()
        try:
            self._process_and_send(batch)
        finally:
            per_event = (time.perf_counter() - started) / len(batch)
            mean = self.event_seconds
            self.event_seconds = per_event if mean is None else mean + 0.2 * (per_event - mean)

    def _process_and_send(self, batch: list[Ready]) -> None:
        params = self.parameters()
        self.in_process = len(batch)
        bodies: list[Any] = []
        sent: list[int] = []
        done: list[int] = []
        failed: list[FailedEvent] = []
        # per event: locals, and no call that is not the payload's (this loop is the worker's
        # share of an event's cost)
        process, begin, end, now = (
            self.calls.process_event,
            self.stats.begin,
            self.stats.end,
            time.monotonic,
        )
        try:
            for number, streams, _size in batch:
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
                if failure is not None:
                    failed.append(
                        FailedEvent(
                            event_number=EventNumber(number), worker=self.name, reason=failure
                        )
                    )
                    continue
                done.append(number)
            if bodies:
                # one message per batch: one header, then the results (small ones packed)
                packed, frames = pack(bodies)
                events = cast(list[EventNumber], sent)
                header = ResultHeader(
                    scan_id=self.scan_id,
                    worker=self.name,
                    parameters_hash=params.hash,
                    events=events,
                    redelivered_events=[n for n in events if n in self.redelivered],
                    packed=packed,
                )
                self._send([header.model_dump_json().encode(), *frames])
        finally:
            self.in_process = 0
            self.released.extend(size for _, _, size in batch)
        # completed only once its result is queued for the reducer
        self.failed.extend(failed)
        self.completed.extend(cast(list[EventNumber], done))
        self.processed += len(batch)

    def _send(self, parts: list[Any]) -> None:
        """Queue a message for the reducer; waits while its queue is full (backpressure), in
        steps, so that a worker told to stop does not wait for a reducer that is gone."""
        socket = self._reducer_socket()
        if socket is None:
            logger.error("no reducer registered: a message of %d frames dropped", len(parts))
            return
        while True:
            try:
                send_message(socket, parts)
                return
            except zmq.Again:
                if self.stopping():
                    logger.error("worker stopping: %d result frames not sent", len(parts))
                    return
                socket.poll(int(GIVE_UP_CHECK_SECONDS * 1000), zmq.POLLOUT)

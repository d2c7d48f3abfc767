"""What each component counts about itself, and the snapshot it publishes for the controller's /metrics.

Ingesters, workers and the reducer run in other processes than the controller, so their counters
travel as a small :class:`ComponentStats` document that the heartbeat writes to Redis; the
controller renders all of them in Prometheus format. A :class:`StatsRecorder` is written from the
event loop and from a payload thread, so it guards its state with a lock; no I/O here.
"""

from __future__ import annotations

import bisect
import collections
import threading
import time
from typing import Callable, Iterable, Optional, Sized

from pydantic import BaseModel, Field

from dranspose.core.coordination import ComponentKind
from dranspose.core.event import frames_nbytes

PROCESSING_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Upper bounds (seconds) of the processing-time histograms: 100 µs (a trivial payload) to 30 s."""

BUSY_WINDOW_SECONDS = 10.0
"""The busy ratio is measured over about this long, so it follows load changes within seconds."""


class HistogramSnapshot(BaseModel):
    """Observations counted per bucket; ``counts`` has one more entry than ``bounds`` (above all)."""

    bounds: list[float]
    counts: list[int]
    sum: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= bound)`` pairs ending with ``(inf, count)``."""
        out, running = [], 0
        for bound, n in zip([*self.bounds, float("inf")], self.counts):
            running += n
            out.append((bound, running))
        return out


class StreamCounters(BaseModel):
    frames: int = 0
    bytes: int = 0


class QueueStats(BaseModel):
    """Where a component holds data it has not passed on yet: its share of the backpressure.

    Gauges except ``blocked_seconds``; read by the heartbeat from the component's live state.
    """

    events_queued: int = Field(
        0,
        description="worker: events assigned to it and not yet "
        "processed (frames on the way, waiting, or in process_event)",
    )
    buffered_bytes: int = Field(0, description="worker: bytes of received frames not yet processed")
    backlog_messages: int = Field(
        0,
        description="ingester: upstream messages read and not yet "
        "forwarded (the upstream's backlog)",
    )
    backlog_bytes: int = Field(0, description="ingester: bytes of those messages")
    blocked_seconds: float = Field(
        0.0,
        description="ingester: time spent holding an upstream "
        "message while no worker had asked for its event, or while a "
        "worker's queue was full; meanwhile it reads no upstream",
    )


class ComponentStats(BaseModel):
    """One component's counters at ``time``; counters run from the process start."""

    kind: ComponentKind
    name: str
    time: float = Field(default_factory=time.time)
    scan_id: Optional[str] = None
    streams: dict[str, StreamCounters] = Field(
        default_factory=dict, description="ingester: frames and bytes read from each upstream"
    )
    busy_seconds: float = Field(
        0.0,
        description="time spent in the payload (process_event or "
        "process_result), including a call still running",
    )
    busy_ratio: float = Field(0.0, description="share of the last ~10 s spent in the payload")
    processing: Optional[HistogramSnapshot] = Field(
        None, description="duration of each payload call (worker: event, reducer: result)"
    )
    queue_depth: int = Field(0, description="reducer: results received, not yet folded")
    queues: QueueStats = Field(default_factory=QueueStats)
    log_records_dropped: int = 0


class Histogram:
    """A fixed-bucket histogram; not thread-safe on its own (the recorder locks it)."""

    def __init__(self, bounds: Iterable[float] = PROCESSING_BUCKETS) -> None:
        self.bounds = sorted(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: a value equal to a bound belongs to that bound's bucket (le = "<=")
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(bounds=list(self.bounds), counts=list(self.counts), sum=self.sum)


class StatsRecorder:
    """Counters of one component, updated in place and copied into a :class:`ComponentStats`."""

    def __init__(self, kind: ComponentKind, name: str) -> None:
        self.kind = kind
        self.name = name
        self._lock = threading.Lock()
        self._streams: dict[str, list[int]] = {}
        """Per stream: messages and bytes read."""
        self._busy = 0.0
        self._busy_since: Optional[float] = None
        self._histogram: Optional[Histogram] = None
        self._queue_depth = 0
        self._created = time.monotonic()
        self._samples: collections.deque[tuple[float, float]] = collections.deque()
        self.queues: Optional[Callable[[], QueueStats]] = None
        """Reads the component's queues for a snapshot; called in the heartbeat's thread, so it
        must read state of that thread (the event loop) only."""

    def ingested(self, stream: str, frames: Iterable[Sized], size: Optional[int] = None) -> None:
        """One upstream message of ``stream`` (its frames, of ``size`` bytes if known) was read."""
        if size is None:
            size = frames_nbytes(frames)
        # No lock: only the ingester's event loop writes these (once per message, its hot path)
        # and a snapshot only reads them; plain ints, the model is built per snapshot.
        counters = self._streams.get(stream)
        if counters is None:
            with self._lock:  # a new key: the snapshot iterates over the dict under the lock
                counters = self._streams[stream] = [0, 0]
        counters[0] += 1
        counters[1] += size

    def begin(self) -> float:
        """A payload call starts; pass the returned value to :meth:`end`."""
        started = time.perf_counter()
        # one attribute store, atomic under the GIL: the lock (taken per event) is not needed
        # for a snapshot to read either this or the previous value
        self._busy_since = started
        return started

    def end(self, started: float) -> None:
        elapsed = time.perf_counter() - started
        # No lock (this runs per event): one thread makes payload calls, and a snapshot reading
        # meanwhile sees the call either still running or done (``_busy_since`` is cleared
        # first, so at worst its busy time lags by this one call); every store is atomic.
        self._busy_since = None
        self._busy += elapsed
        histogram = self._histogram
        if histogram is None:
            histogram = self._histogram = Histogram()
        histogram.observe(elapsed)

    def set_queue_depth(self, depth: int) -> None:
        with self._lock:
            self._queue_depth = depth

    def snapshot(
        self, scan_id: Optional[str] = None, log_records_dropped: int = 0
    ) -> ComponentStats:
        now = time.monotonic()
        with self._lock:
            busy = self._busy
            if self._busy_since is not None:
                busy += time.perf_counter() - self._busy_since
            streams = {s: StreamCounters(frames=f, bytes=b) for s, (f, b) in self._streams.items()}
            histogram = self._histogram.snapshot() if self._histogram is not None else None
            depth = self._queue_depth
            ratio = self._ratio(now, busy)
        queues = self.queues() if self.queues is not None else QueueStats()
        return ComponentStats(
            kind=self.kind,
            name=self.name,
            scan_id=scan_id,
            streams=streams,
            busy_seconds=busy,
            busy_ratio=ratio,
            processing=histogram,
            queue_depth=depth,
            queues=queues,
            log_records_dropped=log_records_dropped,
        )

    def _ratio(self, now: float, busy: float) -> float:
        """Busy time over wall time since the oldest sample of the window (lock held)."""
        self._samples.append((now, busy))
        while len(self._samples) > 2 and now - self._samples[1][0] >= BUSY_WINDOW_SECONDS:
            self._samples.popleft()
        then, busy_then = self._samples[0] if len(self._samples) > 1 else (self._created, 0.0)
        span = now - then
        if span <= 0:
            return 0.0
        return min(max((busy - busy_then) / span, 0.0), 1.0)

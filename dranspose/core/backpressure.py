"""What a worker holds and may ask for, and how long an ingester waits for workers.

A worker asks the controller for events (``want``) instead of being sent whatever arrives, so
the number of events it holds is its own choice. :class:`HeldEvents` turns that number into a
byte bound: it tracks the bytes of the frames the worker has received and not yet processed and
the typical size of one event, and caps how many events the worker holds so that they fit in
its byte budget. With 2 MB frames and the default 128 MiB that is 64 events queued (and at most
as many more in ``process_event``), however fast the worker is.

:class:`WaitClock` measures the time an ingester spends holding an upstream message that no
worker has asked for yet: while it waits, it does not read its upstream, which is how a PUSH
detector is slowed down instead of losing frames (backpressure). Both are read by the heartbeat
(:class:`~dranspose.core.stats.QueueStats`) and shown in the controller's ``/metrics``.
"""

from __future__ import annotations

import time
from typing import Iterable, Optional

DEFAULT_BUFFER_BYTES = 128 * 1024 * 1024
"""A worker's byte budget for the events it queues (see :class:`HeldEvents`); with the batch in
``process_event`` it holds at most twice this."""
MIN_EVENTS = 4
"""A worker always may hold this many events, whatever their size (else it could never ask)."""
_SMOOTHING = 0.1
"""Weight of the newest event in the running mean of the event size."""


class HeldEvents:
    """Bytes a worker holds in received frames, and how many events fit in its budget."""

    def __init__(self, budget_bytes: int = DEFAULT_BUFFER_BYTES) -> None:
        if budget_bytes < 1:
            raise ValueError(f"the buffer budget must be at least 1 byte, got {budget_bytes}")
        self.budget_bytes = budget_bytes
        self.bytes = 0
        """Bytes of frames received and not yet processed (including a batch being processed)."""
        self.event_bytes: Optional[float] = None
        """Running mean of the bytes of one processed event; None until one was seen."""

    def received(self, size: int) -> None:
        self.bytes += size

    def processed(self, sizes: Iterable[int]) -> None:
        """Events of these sizes were processed: their frames are released."""
        for size in sizes:
            self.bytes -= size
            mean = self.event_bytes
            self.event_bytes = float(size) if mean is None else mean + _SMOOTHING * (size - mean)
        self.bytes = max(self.bytes, 0)

    def max_events(self, capacity: int) -> int:
        """The most events to hold: ``capacity``, or fewer when that many would exceed the budget."""
        if not self.event_bytes:
            return capacity
        fit = int(self.budget_bytes // self.event_bytes)
        return max(min(capacity, fit), min(MIN_EVENTS, capacity))


class WaitClock:
    """Adds up the time between :meth:`start` and :meth:`stop`, counting a wait still running."""

    def __init__(self) -> None:
        self.total = 0.0
        self._since: Optional[float] = None

    def start(self) -> None:
        if self._since is None:
            self._since = time.monotonic()

    def stop(self) -> None:
        if self._since is not None:
            self.total += time.monotonic() - self._since
            self._since = None

    @property
    def seconds(self) -> float:
        running = time.monotonic() - self._since if self._since is not None else 0.0
        return self.total + running

"""Events per second of a growing count: the one rate estimator behind every rate the HTTP
apps show (``event_rate`` in ``/api/v1/config``, ``rate_1s``/``rate_10s`` in ``/api/v1/load``,
``events_per_second`` in ``/api/v1/scan``).

Pure, no clock of its own: whoever samples passes the time (``time.monotonic()``), so the
estimate is tested with made-up times and two readers never disagree on what "now" is.
"""

from __future__ import annotations

import collections
from typing import Optional


class RateWindow:
    """Recent ``(time, count)`` samples of one counter and its rate over a recent window.

    The rate is taken over the samples of the last ``window`` seconds, from the oldest of them
    to the newest. When the newest sample is the only one in the window (the counter is read
    less often than the window is long) the sample before it is the base instead, so a sparse
    reader still gets the rate since its previous read; when no sample is in the window the
    counter has not been seen moving lately and there is no rate (``None``).

    A count lower than the previous one means the counter started again (a restarted process):
    the older samples are dropped. Samples older than ``horizon`` (the longest window asked
    for) are dropped too, but for the newest of them (the base of a sparse reader), and
    ``maxlen`` bounds the memory of a counter sampled very often.
    """

    def __init__(self, horizon: float, maxlen: Optional[int] = None) -> None:
        self.horizon = horizon
        self.samples: collections.deque[tuple[float, int]] = collections.deque(maxlen=maxlen)

    def add(self, now: float, count: int) -> None:
        """Record ``count`` as seen at ``now`` (times never decrease)."""
        samples = self.samples
        if samples and count < samples[-1][1]:
            samples.clear()
        samples.append((now, count))
        while len(samples) > 2 and now - samples[1][0] > self.horizon:
            samples.popleft()

    def clear(self) -> None:
        self.samples.clear()

    def rate(self, now: float, window: float, min_span: float = 0.0) -> Optional[float]:
        """Counts per second over the last ``window`` seconds before ``now``; ``None`` when
        the samples cannot tell (fewer than two, or spanning less than ``min_span`` seconds)."""
        start = now - window
        inside = [s for s in self.samples if s[0] >= start]
        if not inside:
            return None
        if len(inside) == 1:
            if len(self.samples) < 2:
                return None
            first = self.samples[-2]
        else:
            first = inside[0]
        last = inside[-1]
        span = last[0] - first[0]
        if span <= 0 or span < min_span:
            return None
        return (last[1] - first[1]) / span

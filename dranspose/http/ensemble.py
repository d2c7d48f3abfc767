"""``GET /api/v1/config`` in the original dranspose's shape: the ensemble of components.

The original answers with ``{"ingesters": [...], "workers": [...], "reducer": {...} | null}``
where every entry has ``name``, ``processed_events``, ``event_rate``, ``dranspose_version``,
``mapreduce_version`` and ``parameters_hash``, ingesters their ``url`` and ``streams``, workers
their ``tags`` and the ``ingesters`` they receive from. Here those entries are built from our
registry (:class:`ComponentInfo`) and counters (:class:`ComponentStats`); each entry also keeps
every field of ours. Pure apart from the clock reading the caller passes in.
"""

from __future__ import annotations

import collections
from typing import Any, Optional

from dranspose.core.coordination import ComponentInfo, ComponentKind
from dranspose.core.stats import ComponentStats

RATE_WINDOW_SECONDS = 10.0
"""``event_rate`` is the rate of ``processed_events`` over about this many seconds."""


class RateTracker:
    """Events per second of each component, from the counters seen on successive reads."""

    def __init__(self, window: float = RATE_WINDOW_SECONDS) -> None:
        self.window = window
        self._samples: dict[str, collections.deque[tuple[float, int]]] = {}

    def rate(self, key: str, now: float, count: int) -> float:
        samples = self._samples.setdefault(key, collections.deque())
        if samples and count < samples[-1][1]:  # a restarted component counts from zero again
            samples.clear()
        samples.append((now, count))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        first_time, first_count = samples[0]
        span = now - first_time
        return (count - first_count) / span if span > 0 else 0.0


def processed_events(info: ComponentInfo, stats: Optional[ComponentStats]) -> int:
    """Events an ingester forwarded, or payload calls of a worker (events) or reducer (results),
    since the component started."""
    if info.kind == ComponentKind.ingester:
        return info.upstream.forwarded if info.upstream is not None else 0
    if stats is not None and stats.processing is not None:
        return sum(stats.processing.counts)
    return 0


def _entry(
    info: ComponentInfo, stats: Optional[ComponentStats], rates: RateTracker, now: float
) -> dict[str, Any]:
    count = processed_events(info, stats)
    return {
        **info.model_dump(mode="json"),
        "processed_events": count,
        "event_rate": rates.rate(f"{info.kind.value}:{info.name}", now, count),
    }


def ensemble_state(
    components: list[ComponentInfo], stats: list[ComponentStats], rates: RateTracker, now: float
) -> dict[str, Any]:
    """``ingesters``, ``workers`` and ``reducer`` as the original's ``EnsembleState`` has them."""
    by_name = {(s.kind, s.name): s for s in stats}
    entries = {
        (c.kind, c.name): _entry(c, by_name.get((c.kind, c.name)), rates, now) for c in components
    }
    ingesters = [e for (kind, _), e in entries.items() if kind == ComponentKind.ingester]
    # every ingester sends to every worker of the scan: a worker receives from all of them
    connected = [{"name": i["name"], "url": i["url"], "streams": i["streams"]} for i in ingesters]
    workers = [
        {**e, "ingesters": connected}
        for (kind, _), e in entries.items()
        if kind == ComponentKind.worker
    ]
    reducers = [e for (kind, _), e in entries.items() if kind == ComponentKind.reducer]
    return {
        "ingesters": ingesters,
        "workers": workers,
        "reducer": reducers[0] if reducers else None,
    }

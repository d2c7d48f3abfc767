"""``GET /api/v1/config`` in the original dranspose's shape: the ensemble of components.

The original answers with ``{"ingesters": [...], "workers": [...], "reducer": {...} | null}``
where every entry has ``name``, ``processed_events``, ``event_rate``, ``dranspose_version``,
``mapreduce_version`` and ``parameters_hash``, ingesters their ``url`` and ``streams``, workers
their ``tags`` and the ``ingesters`` they receive from (each entry whole), every entry its
process's ``service_uuid`` and its scan's ``mapping_uuid``, an ingester the workers it sends to
(``connected_workers``, by their ``service_uuid``). Here those entries are built from our
registry (:class:`ComponentInfo`) and counters (:class:`ComponentStats`); each entry also keeps
every field of ours. Pure apart from the clock reading the caller passes in.
"""

from __future__ import annotations

from typing import Any, Optional

from dranspose.core.coordination import ComponentInfo, ComponentKind
from dranspose.core.protocol import as_uuid4
from dranspose.core.rates import RateWindow
from dranspose.core.stats import ComponentStats

RATE_WINDOW_SECONDS = 10.0
"""``event_rate`` is the rate of ``processed_events`` over about this many seconds."""


class RateTracker:
    """Events per second of each component, from the counters seen on successive reads (a
    :class:`RateWindow` per component; a restarted one counts from zero again)."""

    def __init__(self, window: float = RATE_WINDOW_SECONDS) -> None:
        self.window = window
        self._samples: dict[str, RateWindow] = {}

    def rate(self, key: str, now: float, count: int) -> float:
        samples = self._samples.get(key)
        if samples is None:
            samples = self._samples[key] = RateWindow(self.window)
        samples.add(now, count)
        return samples.rate(now, self.window) or 0.0


def processed_events(info: ComponentInfo, stats: Optional[ComponentStats]) -> int:
    """Events an ingester forwarded, or payload calls of a worker (events) or reducer (results),
    since the component started."""
    if info.kind == ComponentKind.ingester:
        return info.upstream.forwarded if info.upstream is not None else 0
    if stats is not None and stats.processing is not None:
        return sum(stats.processing.counts)
    return 0


def _uuid(value: Optional[str]) -> Optional[str]:
    parsed = as_uuid4(value)
    return str(parsed) if parsed is not None else None


def _entry(
    info: ComponentInfo, stats: Optional[ComponentStats], rates: RateTracker, now: float
) -> dict[str, Any]:
    count = processed_events(info, stats)
    return {
        **info.model_dump(mode="json"),
        "processed_events": count,
        "event_rate": rates.rate(f"{info.kind.value}:{info.name}", now, count),
        "service_uuid": _uuid(info.instance),  # the process (a restarted one has a new id)
        "mapping_uuid": _uuid(info.scan_id),  # the scan it has prepared for
    }


def ensemble_state(
    components: list[ComponentInfo], stats: list[ComponentStats], rates: RateTracker, now: float
) -> dict[str, Any]:
    """``ingesters``, ``workers`` and ``reducer`` as the original's ``EnsembleState`` has them."""
    by_name = {(s.kind, s.name): s for s in stats}
    entries = {
        (c.kind, c.name): _entry(c, by_name.get((c.kind, c.name)), rates, now) for c in components
    }
    worker_entries = [e for (kind, _), e in entries.items() if kind == ComponentKind.worker]
    # every ingester sends to every worker: the original's ConnectedWorker records, by uuid
    connected = {
        w["service_uuid"]: {
            "name": w["name"],
            "service_uuid": w["service_uuid"],
            "last_seen": w["last_seen"],
        }
        for w in worker_entries
        if w["service_uuid"] is not None
    }
    ingesters = [
        {**e, "connected_workers": connected}
        for (kind, _), e in entries.items()
        if kind == ComponentKind.ingester
    ]
    # and a worker receives from all of them
    workers = [{**e, "ingesters": ingesters} for e in worker_entries]
    reducers = [e for (kind, _), e in entries.items() if kind == ComponentKind.reducer]
    return {
        "ingesters": ingesters,
        "workers": workers,
        "reducer": reducers[0] if reducers else None,
    }

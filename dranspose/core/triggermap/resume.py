"""An :class:`Assigner` as a predecessor controller left it, rebuilt from its published runs.

What the assigner must know to continue a scan is all in what it published: its release point
(the end of the last released run), the events each worker still owes (released to it and not
reported done: ``dranspose.core.scan_resume`` works those out) and the bindings of the
constraints that have released events and events still to release. A constraint belongs to one
occurrence of a part, so only constraints of the occurrence holding the release point can span
it; each is pinned to the worker its released frames went to. Bindings made ahead of the release
point were never published: nobody got those events, so they are simply bound again. Pure code.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Optional

from dranspose.core.coordination import AssignedRun
from dranspose.core.protocol import WorkerName
from dranspose.core.triggermap.assigner import Assigner
from dranspose.core.triggermap.compact import CompiledPart, TriggerMap
from dranspose.core.triggermap.shapes import Streams

RunAt = Callable[[int], AssignedRun]
"""The published run that released an event (below the release point)."""


class OwedEvents:
    """Released events that live workers still owe, as the assigner keeps them."""

    def __init__(self) -> None:
        self.solo: dict[WorkerName, list[tuple[int, int, Streams]]] = {}
        """Per worker, ``[start, end)`` pieces of events for it alone (in order) and their
        streams."""
        self.shared: dict[int, tuple[Streams, set[WorkerName]]] = {}
        """Events for several workers (or re-delivered), their streams and who still owes them."""

    def add_solo(self, worker: WorkerName, start: int, end: int, streams: Streams) -> None:
        self.solo.setdefault(worker, []).append((start, end, streams))

    def add_shared(self, event: int, streams: Streams, worker: WorkerName) -> None:
        self.shared.setdefault(event, (streams, set()))[1].add(worker)


def _pin(part: CompiledPart, local: int, event0: int, upto: int, run_at: RunAt) -> WorkerName:
    """The worker a constraint's released frames went to: a stream whose entry names the
    constraint alone says it; entries of several workers narrow it down."""
    candidates: Optional[set[WorkerName]] = None
    for offset in range(part.first[local], upto):
        streams = run_at(event0 + offset).streams
        for stream, route in part.routes[offset]:
            if not any(c == local for c, _ in route):
                continue
            names = streams.get(stream) or []
            if len(route) == 1 and len(names) == 1:
                return names[0]
            candidates = set(names) if candidates is None else candidates & set(names)
        if candidates is not None and len(candidates) == 1:
            return next(iter(candidates))
    raise ValueError(
        f"the worker bound to constraint {local} of part {part.name!r} (event "
        f"{event0 + part.first[local]}) cannot be told from the published assignments"
    )


def spanning_bindings(
    trigger_map: TriggerMap, frontier: int, run_at: RunAt
) -> dict[int, tuple[WorkerName, int]]:
    """Constraint -> (worker, last event) for every constraint with released events and events
    still to release (``frontier`` is the first event not released)."""
    if not 1 < frontier < trigger_map.last_event:
        return {}
    part, offset, base = trigger_map.locate(frontier)
    event0 = frontier - offset
    return {
        base + local: (_pin(part, local, event0, offset, run_at), event0 + last)
        for local, last in part.last.items()
        if part.first[local] < offset <= last
    }


def restore_assigner(
    trigger_map: TriggerMap,
    workers: Mapping[WorkerName, Iterable[str]],
    frontier: int,
    run_at: RunAt,
    owed: OwedEvents,
) -> Assigner:
    """The assigner of a scan released up to ``frontier`` (exclusive), with ``owed`` events
    outstanding; raises ValueError (or TriggerMapError: the workers cannot take the map)."""
    bound = spanning_bindings(trigger_map, frontier, run_at)
    return Assigner.resumed(trigger_map, workers, frontier, bound, owed.solo, owed.shared)

"""Dynamic assignment: binding a map's constraints to real workers as they ask for work.

The :class:`Assigner` reads the map only through its public lookups (:meth:`TriggerMap.locate`,
:meth:`TriggerMap.positions`, :meth:`TriggerMap.check_event` and the read-only fields of
:class:`CompiledPart`), so the map's storage can change without touching the assignment logic.
What it hands out are :class:`~dranspose.core.coordination.AssignedEvent` records (``Assignment``
is that model's name here): the same objects the controller publishes, no conversion between them.
"""

from __future__ import annotations

import heapq
from itertools import islice
from typing import Iterable, Mapping, Optional

from dranspose.core.construct import trusted
from dranspose.core.coordination import Assignment
from dranspose.core.protocol import EventNumber, StreamName, WorkerName, WorkerTag
from dranspose.core.triggermap.compact import CompiledPart, TriggerMap
from dranspose.core.triggermap.errors import AssignmentError, show


class Assigner:
    """Binds constraints to real workers as they ask for work, and releases events in order.

    * ``request(w, k)`` walks forward from the lowest event not yet released, binding every free
      constraint whose tags ``w`` has, until ``w`` has bound constraints in ``k`` events. A
      constraint is never split, so one spanning several events may give ``w`` a few more.
    * An event is released once all its constraints are bound *and* every earlier event is
      released: ingesters read frames in event order, so they need assignments in that order.
      ``request`` returns the events its call released, which may include events the asker takes
      no part in (they were waiting for this one) and broadcast-only events (they need no request).
    * Binding may run ahead of the release point (at most ``lookahead`` events), so a worker can
      take generic work while an earlier event waits for a worker with rarer tags.

    Only the window between the release point and the scan horizon is held in memory; bindings are
    dropped once the last event of their constraint is released. Released assignments are kept
    until every worker they name has called :meth:`complete` (or was forgotten), so that
    :meth:`forget_worker` can say what was lost: the runtime must report completions.
    """

    def __init__(
        self,
        trigger_map: TriggerMap,
        workers: Mapping[WorkerName, Iterable[str]],
        lookahead: int = 10_000,
    ) -> None:
        if lookahead < 1:
            raise ValueError(f"lookahead must be at least 1, got {lookahead}")
        trigger_map.validate_against(workers)
        self.trigger_map = trigger_map
        self.lookahead = lookahead
        self._workers: dict[WorkerName, frozenset[str]] = {
            name: frozenset(tags) for name, tags in sorted(workers.items())
        }
        self._targets_cache: dict[frozenset[WorkerTag], tuple[WorkerName, ...]] = {}
        self._frontier = 0  # first event not released
        self._horizon = 0  # first event not yet scanned
        self._bound: dict[int, WorkerName] = {}
        self._expiry: list[tuple[int, int]] = []  # heap of (last event of constraint, constraint)
        # scan cache for [frontier, horizon): unbound constraints, by tags, in first-event order
        self._open: dict[frozenset[WorkerTag], dict[int, int]] = {}  # tags -> {constraint: expiry}
        self._open_events: dict[int, list[int]] = {}  # constraint -> scanned events needing it
        self._missing: dict[int, int] = {}  # event -> number of its constraints still unbound
        # released events whose workers have not all completed them
        self._released: dict[int, Assignment] = {}
        self._waiting: dict[int, set[WorkerName]] = {}
        self._outstanding: dict[WorkerName, set[int]] = {name: set() for name in self._workers}

    @property
    def workers(self) -> dict[WorkerName, frozenset[str]]:
        """The live workers and their tags."""
        return dict(self._workers)

    @property
    def next_event(self) -> EventNumber:
        """The lowest event not yet released."""
        return EventNumber(self._frontier)

    def done(self) -> bool:
        """Every event of the map is released."""
        return self._frontier >= len(self.trigger_map)

    def _targets(self, tags: frozenset[WorkerTag]) -> tuple[WorkerName, ...]:
        targets = self._targets_cache.get(tags)
        if targets is None:
            targets = tuple(name for name, have in self._workers.items() if tags <= have)
            self._targets_cache[tags] = targets
        return targets

    def _bind(self, constraint: int, worker: WorkerName, expiry: int) -> None:
        self._bound[constraint] = worker
        heapq.heappush(self._expiry, (expiry, constraint))

    def request(self, worker: WorkerName, max_events: int) -> list[Assignment]:
        """``worker`` asks for up to ``max_events`` events; returns the events the call released."""
        if worker not in self._workers:
            raise AssignmentError(f"unknown worker {worker!r}")
        if not isinstance(max_events, int) or max_events < 1:
            raise AssignmentError(f"max_events must be a positive integer, got {show(max_events)}")
        have = self._workers[worker]
        given: set[int] = set()
        released: list[Assignment] = []

        # 1. constraints scanned earlier but still unbound, earliest first event first
        while len(given) < max_events:
            budget = max_events - len(given)
            candidates = sorted(
                (self._open_events[c][0], c, tags)
                for tags, constraints in self._open.items()
                if tags <= have
                for c in islice(constraints, budget)
            )
            if not candidates:
                break
            for _, constraint, tags in candidates:
                if len(given) >= max_events:
                    break
                self._bind_open(constraint, tags, worker, given)
        self._release(released)

        # 2. scan new events, binding what this worker can take, noting what it cannot
        total = len(self.trigger_map)
        if self._horizon < total:
            for event, part, offset, base in self.trigger_map.positions(self._horizon):
                if event - self._frontier >= self.lookahead:
                    self._release(released)  # the window is full: move its front if it can
                    if event - self._frontier >= self.lookahead:
                        break
                needs = [
                    (c + base, tags, c)
                    for c, tags in part.needs[offset]
                    if c + base not in self._bound
                ]
                if needs and len(given) >= max_events:
                    break
                for constraint, tags, local in needs:
                    if constraint in self._open_events:  # seen unbound in an earlier event
                        self._open_events[constraint].append(event)
                        self._missing[event] = self._missing.get(event, 0) + 1
                        if tags <= have and len(given) < max_events:
                            self._bind_open(constraint, tags, worker, given)
                    elif tags <= have:
                        self._bind(constraint, worker, event - offset + part.last[local])
                        given.add(event)
                    else:
                        expiry = event - offset + part.last[local]
                        self._open.setdefault(tags, {})[constraint] = expiry
                        self._open_events[constraint] = [event]
                        self._missing[event] = self._missing.get(event, 0) + 1
                self._horizon = event + 1
        self._release(released)
        return released

    def _bind_open(
        self, constraint: int, tags: frozenset[WorkerTag], worker: WorkerName, given: set[int]
    ) -> None:
        """Bind a constraint that scanned events wait for; those events count as the worker's."""
        constraints = self._open[tags]
        expiry = constraints.pop(constraint)
        if not constraints:
            del self._open[tags]
        self._bind(constraint, worker, expiry)
        for event in self._open_events.pop(constraint):
            given.add(event)
            left = self._missing[event] - 1
            if left:
                self._missing[event] = left
            else:
                del self._missing[event]

    def _release(self, out: list[Assignment]) -> None:
        """Release the fully bound events at the front, in order; drop bindings no longer needed."""
        if self._frontier >= self._horizon or self._frontier in self._missing:
            return
        for event, part, offset, base in self.trigger_map.positions(self._frontier):
            if event >= self._horizon or event in self._missing:
                break
            assignment = self._build(event, (part, offset, base))
            out.append(assignment)
            destinations: set[WorkerName] = set()
            for names in assignment.streams.values():
                destinations.update(names)
            if destinations:
                self._released[event] = assignment
                self._waiting[event] = destinations
                for name in destinations:
                    self._outstanding[name].add(event)
            self._frontier = event + 1
        while self._expiry and self._expiry[0][0] < self._frontier:
            _, constraint = heapq.heappop(self._expiry)
            self._bound.pop(constraint, None)

    def _build(
        self, event_number: int, located: Optional[tuple[CompiledPart, int, int]] = None
    ) -> Assignment:
        part, offset, base = located or self.trigger_map.locate(event_number)
        streams: dict[StreamName, list[WorkerName]] = {}
        for stream, route in part.routes[offset]:
            names: list[WorkerName] = []
            for local, tags in route:
                if local is None:
                    names.extend(self._targets(tags))
                else:
                    names.append(self._bound[base + local])
            streams[stream] = sorted(set(names)) if len(route) > 1 else names
        # built here from the map's own names: nothing to validate, and this runs per event
        return trusted(
            Assignment,
            {"event_number": EventNumber(event_number), "streams": streams, "redelivered": False},
        )

    def assignments_for_event(self, event_number: int) -> Optional[Assignment]:
        """The event's assignment once all its constraints are bound; ``None`` before that.

        Released events are kept until all their workers completed them. For an event bound but
        not yet released the answer can still change if one of its workers is forgotten.
        """
        self.trigger_map.check_event(event_number)
        if event_number < self._frontier:
            if event_number not in self._released:
                raise KeyError(
                    f"event {event_number} is completed; its assignment is no longer kept"
                )
            return self._released[event_number]
        part, offset, base = self.trigger_map.locate(event_number)
        if all(local + base in self._bound for local, _ in part.needs[offset]):
            return self._build(event_number)
        return None

    def waiting_for(self, event_number: int) -> Iterable[WorkerName]:
        """The workers a released event still waits for (none once all completed it)."""
        return self._waiting.get(event_number, ())

    def complete(self, event_number: int, worker: WorkerName) -> None:
        """``worker`` finished its share of a released event; it is no longer reported as lost."""
        if event_number not in self._outstanding.get(worker, ()):
            raise AssignmentError(f"worker {worker!r} has no outstanding event {event_number}")
        self._outstanding[worker].discard(event_number)
        self._done_by(event_number, worker)

    def _done_by(self, event_number: int, worker: WorkerName) -> None:
        waiting = self._waiting[event_number]
        waiting.discard(worker)
        if not waiting:
            del self._waiting[event_number]
            del self._released[event_number]

    def forget_worker(self, name: WorkerName) -> list[EventNumber]:
        """Remove a dead worker; returns the released events it got but did not complete (lost).

        Its constraints are unbound: events not yet released that needed them go to whichever
        worker binds them next, so nothing unreleased is lost. A constraint that already had
        released events continues on another worker without those (lost) earlier frames.
        If no remaining worker has the tags some later event needs, the scan stalls there;
        ``trigger_map.validate_against(assigner.workers)`` tells.
        """
        lost, _ = self._drop_worker(name, redeliver=False)
        return lost

    def reassign_worker(self, name: WorkerName) -> tuple[list[EventNumber], list[Assignment]]:
        """Remove a dead worker and hand its unfinished events to live workers (re-delivery).

        Each released event the worker had not completed goes to the live worker with all of
        its tags that holds the fewest outstanding events. Returns the events nobody can take
        (lost) and, for the others, the assignments to re-deliver: per event only the streams
        the replacement did not already get (a broadcast it received itself needs nothing).
        An event whose frames were shared with a constraint of several events is re-delivered
        alone: the replacement processes it without the dead worker's earlier frames.
        """
        return self._drop_worker(name, redeliver=True)

    def _replacement(self, tags: frozenset[str]) -> Optional[WorkerName]:
        able = [w for w, have in self._workers.items() if tags <= have]
        return min(able, key=lambda w: (len(self._outstanding[w]), w)) if able else None

    def _drop_worker(
        self, name: WorkerName, redeliver: bool
    ) -> tuple[list[EventNumber], list[Assignment]]:
        if name not in self._workers:
            raise AssignmentError(f"unknown worker {name!r}")
        tags = self._workers.pop(name)
        self._targets_cache.clear()
        lost: list[EventNumber] = []
        moved: list[Assignment] = []
        for event in sorted(self._outstanding.pop(name)):
            replacement = self._replacement(tags) if redeliver else None
            if replacement is None:
                lost.append(EventNumber(event))
                self._done_by(event, name)
                continue
            kept = self._released[event]
            fresh: dict[StreamName, list[WorkerName]] = {}
            for stream, names in kept.streams.items():
                if name in names:
                    if replacement not in names:
                        fresh[stream] = [replacement]
                    kept.streams[stream] = sorted({*names, replacement} - {name})
            if fresh:
                self._waiting[event].add(replacement)
                self._outstanding[replacement].add(event)
                moved.append(
                    Assignment(event_number=EventNumber(event), streams=fresh, redelivered=True)
                )
            self._done_by(event, name)
        for constraint in [c for c, w in self._bound.items() if w == name]:
            del self._bound[constraint]
        # The scan cache only summarises bindings; rebuilding it from the release point is simpler
        # and cheaper (one window) than patching every event that held a dropped binding.
        self._open.clear()
        self._open_events.clear()
        self._missing.clear()
        self._horizon = self._frontier
        return lost, moved

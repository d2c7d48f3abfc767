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
from typing import Iterable, Mapping, NamedTuple, Optional

from dranspose.core.construct import trusted
from dranspose.core.coordination import AssignedRun, Assignment
from dranspose.core.protocol import EventNumber, WorkerName, WorkerTag
from dranspose.core.ranges import RangeSet
from dranspose.core.triggermap.compact import CompiledPart, TriggerMap
from dranspose.core.triggermap.errors import AssignmentError, show
from dranspose.core.triggermap.shapes import ShapeCache, ShapeHistory, Streams


class Dropped(NamedTuple):
    """What removing a dead worker did to the released events it had not completed."""

    lost: list[EventNumber]
    """Its events nobody takes over (in order)."""
    moved: list[Assignment]
    """Re-deliveries: per event the streams its replacement still needs."""
    settled: list[EventNumber]
    """Events no worker is waiting for any more (lost ones included)."""


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
    dropped once the last event of their constraint is released. Released events are kept until
    every worker they name has called :meth:`complete` (or was forgotten), so that
    :meth:`forget_worker` can say what was lost: the runtime must report completions.

    Most events go to one worker alone (each stream's frame to the worker bound to the event). Those
    are kept per worker as ranges of event numbers, with their ``streams`` shared by every event of
    the same shape, and released as runs (:meth:`request_runs`): the controller's account then
    costs a few list operations per event instead of an assignment object, its dicts and sets
    (bench/controller_account.py). Events for several workers keep a full record each.
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
        # released events for several workers that not all of them have completed
        self._released: dict[int, Assignment] = {}
        self._waiting: dict[int, set[WorkerName]] = {}
        self._outstanding: dict[WorkerName, set[int]] = {name: set() for name in self._workers}
        # released events for one worker alone that it has not completed, and their shapes
        self._solo: dict[WorkerName, RangeSet] = {name: RangeSet() for name in self._workers}
        self._solo_shapes = ShapeHistory(self._workers)
        self._shapes = ShapeCache()

    @classmethod
    def resumed(
        cls,
        trigger_map: TriggerMap,
        workers: Mapping[WorkerName, Iterable[str]],
        frontier: int,
        bound: Mapping[int, tuple[WorkerName, int]],
        solo: Mapping[WorkerName, list[tuple[int, int, Streams]]],
        shared: Mapping[int, tuple[Streams, set[WorkerName]]],
    ) -> Assigner:
        """A predecessor's assigner, read from its published runs (``triggermap.resume``): its
        release point, constraint -> (worker, last event), and the released events still owed,
        for one worker alone (``[start, end)`` pieces and their streams) or for several."""
        assigner = cls(trigger_map, workers)
        assigner._frontier = assigner._horizon = frontier
        for constraint, (worker, expiry) in bound.items():
            if worker in assigner._workers:  # one the predecessor dropped is bound afresh
                assigner._bind(constraint, worker, expiry)
        for worker, pieces in solo.items():
            shapes = assigner._solo_shapes.by_worker[worker][1]
            for start, end, streams in pieces:
                assigner._solo[worker].add_range(start, end)
                if not shapes or shapes[-1] != streams:
                    assigner._solo_shapes.note(worker, start, streams, pieces[0][0])
        for event, (streams, waiting) in sorted(shared.items()):
            number = EventNumber(event)
            assigner._released[event] = Assignment(event_number=number, streams=streams)
            assigner._waiting[event] = set(waiting)
            for worker in waiting:
                assigner._outstanding[worker].add(event)
        return assigner

    @property
    def workers(self) -> dict[WorkerName, frozenset[str]]:
        """The live workers and their tags."""
        return dict(self._workers)

    @property
    def remembered_shapes(self) -> dict[WorkerName, int]:
        """Per worker, how many shape changes of the events it alone owes are kept: bounded by
        the events still owed, not by the scan's length, so a long scan's memory stays flat."""
        return {name: len(starts) for name, (starts, _) in self._solo_shapes.by_worker.items()}

    @property
    def bindings(self) -> dict[int, WorkerName]:
        """Virtual constraints bound to a worker now (the original's ``/status`` lists them)."""
        return dict(self._bound)

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
        return [
            trusted(
                Assignment,
                {"event_number": EventNumber(e), "streams": run.streams, "redelivered": False},
            )
            for run in self.request_runs(worker, max_events)
            for e in run.events()
        ]

    def request_runs(self, worker: WorkerName, max_events: int) -> list[AssignedRun]:
        """:meth:`request`, the released events as runs of consecutive events with the same
        destinations (whose ``streams`` are shared: read them, do not change them)."""
        if worker not in self._workers:
            raise AssignmentError(f"unknown worker {worker!r}")
        if not isinstance(max_events, int) or max_events < 1:
            raise AssignmentError(f"max_events must be a positive integer, got {show(max_events)}")
        have = self._workers[worker]
        given: set[int] = set()
        released: list[AssignedRun] = []

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

        # 2. scan new events, binding what this worker can take, noting what it cannot (once
        # per event of the scan: locals, and the common case, one constraint this worker can
        # take, without a call)
        total = len(self.trigger_map)
        if self._horizon < total:
            bound, open_events, expiry_heap = self._bound, self._open_events, self._expiry
            for event, part, offset, base in self.trigger_map.positions(self._horizon):
                if event - self._frontier >= self.lookahead:
                    self._release(released)  # the window is full: move its front if it can
                    if event - self._frontier >= self.lookahead:
                        break
                event_needs = part.needs[offset]
                if len(event_needs) == 1:
                    local, tags = event_needs[0]
                    constraint = local + base
                    if constraint not in bound and constraint not in open_events and tags <= have:
                        if len(given) >= max_events:
                            break
                        bound[constraint] = worker
                        heapq.heappush(expiry_heap, (event - offset + part.last[local], constraint))
                        given.add(event)
                        self._horizon = event + 1
                        continue
                needs = [(c + base, tags, c) for c, tags in event_needs if c + base not in bound]
                if needs and len(given) >= max_events:
                    break
                for constraint, tags, local in needs:
                    if constraint in open_events:  # seen unbound in an earlier event
                        open_events[constraint].append(event)
                        self._missing[event] = self._missing.get(event, 0) + 1
                        if tags <= have and len(given) < max_events:
                            self._bind_open(constraint, tags, worker, given)
                    elif tags <= have:
                        self._bind(constraint, worker, event - offset + part.last[local])
                        given.add(event)
                    else:
                        expiry = event - offset + part.last[local]
                        self._open.setdefault(tags, {})[constraint] = expiry
                        open_events[constraint] = [event]
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

    def _release(self, out: list[AssignedRun]) -> None:
        """Release the fully bound events at the front, in order, appending them to ``out`` as
        runs; drop bindings no longer needed. Runs once per event of a scan: locals, no calls
        on the common path."""
        if self._frontier >= self._horizon or self._frontier in self._missing:
            return
        horizon, missing, shape_of = self._horizon, self._missing, self._shape
        route_keys, shapes, bound = self._shapes.route_keys, self._shapes.shapes, self._bound
        # the run being extended (continuing the last one of an earlier call of this request)
        first, length, run_streams = (out.pop()[:3]) if out else (-1, 0, None)
        solo_worker: Optional[WorkerName] = None
        solo_start = solo_end = 0
        solo_shapes: list[Streams] = []
        for event, part, offset, base in self.trigger_map.positions(self._frontier):
            if event >= horizon or event in missing:
                break
            known = route_keys.get(id(part.routes[offset]))
            shape = (
                shapes.get((known[0], bound[base + known[1][0]]))
                if known is not None and len(known[1]) == 1
                else None
            )
            streams, destinations = shape or shape_of(part, offset, base)
            if streams is run_streams and first + length == event:
                length += 1
            else:
                if run_streams is not None:
                    out.append(AssignedRun(first, length, run_streams))
                first, length, run_streams = event, 1, streams
            if len(destinations) == 1:
                (worker,) = destinations
                if worker == solo_worker and event == solo_end:
                    solo_end += 1
                else:
                    if solo_worker is not None:
                        self._solo[solo_worker].add_range(solo_start, solo_end)
                    solo_worker, solo_start, solo_end = worker, event, event + 1
                    solo_shapes = self._solo_shapes.by_worker[worker][1]
                if not solo_shapes or solo_shapes[-1] is not streams:
                    oldest = self._solo[worker].first()
                    floor = solo_start if oldest is None else min(oldest, solo_start)
                    self._solo_shapes.note(worker, event, streams, floor)
            elif destinations:
                self._released[event] = trusted(
                    Assignment,
                    {"event_number": EventNumber(event), "streams": streams, "redelivered": False},
                )
                self._waiting[event] = set(destinations)
                for name in destinations:
                    self._outstanding[name].add(event)
            self._frontier = event + 1
        if run_streams is not None:
            out.append(AssignedRun(first, length, run_streams))
        if solo_worker is not None:
            self._solo[solo_worker].add_range(solo_start, solo_end)
        while self._expiry and self._expiry[0][0] < self._frontier:
            _, constraint = heapq.heappop(self._expiry)
            self._bound.pop(constraint, None)

    def _shape(
        self, part: CompiledPart, offset: int, base: int
    ) -> tuple[Streams, frozenset[WorkerName]]:
        """The event's streams and every worker they name; one shared object per shape."""
        return self._shapes.get(part.routes[offset], base, self._bound, self._targets)

    def _build(
        self, event_number: int, located: Optional[tuple[CompiledPart, int, int]] = None
    ) -> Assignment:
        part, offset, base = located or self.trigger_map.locate(event_number)
        streams, _ = self._shape(part, offset, base)
        # built here from the map's own names: nothing to validate
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
            if event_number in self._released:
                return self._released[event_number]
            for worker, solo in self._solo.items():
                if event_number in solo:
                    return trusted(
                        Assignment,
                        {
                            "event_number": EventNumber(event_number),
                            "streams": self._solo_shapes.streams_at(worker, event_number),
                            "redelivered": False,
                        },
                    )
            raise KeyError(f"event {event_number} is completed; its assignment is no longer kept")
        part, offset, base = self.trigger_map.locate(event_number)
        if all(local + base in self._bound for local, _ in part.needs[offset]):
            return self._build(event_number)
        return None

    def waiting_for(self, event_number: int) -> frozenset[WorkerName]:
        """The workers a released event still waits for (none once all completed it)."""
        waiting = self._waiting.get(event_number)
        if waiting is not None:
            return frozenset(waiting)
        return frozenset(w for w, solo in self._solo.items() if event_number in solo)

    def complete(self, event_number: int, worker: WorkerName) -> bool:
        """``worker`` finished its share of a released event; it is no longer reported as lost.

        Returns whether no worker is waiting for the event any more."""
        solo = self._solo.get(worker)
        if solo is not None and solo.discard(event_number):
            return True
        if event_number not in self._outstanding.get(worker, ()):
            raise AssignmentError(f"worker {worker!r} has no outstanding event {event_number}")
        self._outstanding[worker].discard(event_number)
        return self._done_by(event_number, worker)

    def _done_by(self, event_number: int, worker: WorkerName) -> bool:
        waiting = self._waiting[event_number]
        waiting.discard(worker)
        if waiting:
            return False
        del self._waiting[event_number]
        del self._released[event_number]
        return True

    def forget_worker(self, name: WorkerName) -> list[EventNumber]:
        """Remove a dead worker; returns the released events it got but did not complete (lost).

        Its constraints are unbound: events not yet released that needed them go to whichever
        worker binds them next, so nothing unreleased is lost. A constraint that already had
        released events continues on another worker without those (lost) earlier frames.
        If no remaining worker has the tags some later event needs, the scan stalls there;
        ``trigger_map.validate_against(assigner.workers)`` tells.
        """
        return self.drop_worker(name, redeliver=False).lost

    def reassign_worker(self, name: WorkerName) -> tuple[list[EventNumber], list[Assignment]]:
        """Remove a dead worker and hand its unfinished events to live workers (re-delivery).

        Each released event the worker had not completed goes to the live worker with all of
        its tags that holds the fewest outstanding events. Returns the events nobody can take
        (lost) and, for the others, the assignments to re-deliver: per event only the streams
        the replacement did not already get (a broadcast it received itself needs nothing).
        An event whose frames were shared with a constraint of several events is re-delivered
        alone: the replacement processes it without the dead worker's earlier frames.
        """
        dropped = self.drop_worker(name, redeliver=True)
        return dropped.lost, dropped.moved

    def _replacement(self, tags: frozenset[str]) -> Optional[WorkerName]:
        able = [w for w, have in self._workers.items() if tags <= have]
        return (
            min(able, key=lambda w: (len(self._outstanding[w]) + len(self._solo[w]), w))
            if able
            else None
        )

    def drop_worker(self, name: WorkerName, redeliver: bool) -> Dropped:
        """:meth:`forget_worker` (``redeliver`` False) or :meth:`reassign_worker`, saying also
        which events no worker waits for any more."""
        if name not in self._workers:
            raise AssignmentError(f"unknown worker {name!r}")
        tags = self._workers.pop(name)
        self._targets_cache.clear()
        self._shapes.clear()  # broadcast routes named it
        dropped = Dropped([], [], [])
        solo = self._solo.pop(name)
        owed = sorted({*self._outstanding.pop(name), *solo})
        for event in owed:
            replacement = self._replacement(tags) if redeliver else None
            if event in solo:
                self._drop_solo(name, event, replacement, dropped)
            else:
                self._drop_shared(name, event, replacement, dropped)
        self._solo_shapes.forget(name)
        for constraint in [c for c, w in self._bound.items() if w == name]:
            del self._bound[constraint]
        # The scan cache only summarises bindings; rebuilding it from the release point is simpler
        # and cheaper (one window) than patching every event that held a dropped binding.
        self._open.clear()
        self._open_events.clear()
        self._missing.clear()
        self._horizon = self._frontier
        return dropped

    def _drop_solo(
        self, name: WorkerName, event: int, replacement: Optional[WorkerName], dropped: Dropped
    ) -> None:
        """A dead worker's own event: lost, or handed whole to ``replacement``."""
        number = EventNumber(event)
        if replacement is None:
            dropped.lost.append(number)
            dropped.settled.append(number)
            return
        streams = self._solo_shapes.streams_at(name, event)
        self._released[event] = trusted(
            Assignment,
            {
                "event_number": number,
                "streams": {s: [replacement] if names else [] for s, names in streams.items()},
                "redelivered": False,
            },
        )
        self._waiting[event] = {replacement}
        self._outstanding[replacement].add(event)
        fresh = {s: [replacement] for s, names in streams.items() if names}
        dropped.moved.append(Assignment(event_number=number, streams=fresh, redelivered=True))

    def _drop_shared(
        self, name: WorkerName, event: int, replacement: Optional[WorkerName], dropped: Dropped
    ) -> None:
        """A dead worker's share of an event for several workers: lost, or its streams handed to
        ``replacement`` (unless it got them itself)."""
        number = EventNumber(event)
        if replacement is None:
            dropped.lost.append(number)
        else:
            kept = self._released[event]
            fresh: Streams = {}
            streams = dict(kept.streams)  # a copy: events of the same shape share the dict
            for stream, names in kept.streams.items():
                if name in names:
                    if replacement not in names:
                        fresh[stream] = [replacement]
                    streams[stream] = sorted({*names, replacement} - {name})
            kept.streams = streams
            if fresh:
                self._waiting[event].add(replacement)
                self._outstanding[replacement].add(event)
                dropped.moved.append(
                    Assignment(event_number=number, streams=fresh, redelivered=True)
                )
        if self._done_by(event, name):
            dropped.settled.append(number)

"""Shapes of released events: what the assigner shares between events instead of building per event.

An event's *shape* is its ``streams`` (stream -> workers) and the set of workers they name. A map
repeats a few forms of routes (the same streams, destinations and broadcast tags, with other
constraint numbers) and a few workers take them, so most events of a scan have one of a handful of
shapes. :class:`ShapeCache` builds each shape once and hands out the same objects (never changed
in place), so consecutive events of one shape form a run by identity, and :class:`ShapeHistory`
remembers, for the events one worker alone still owes, their shapes as a short list of changes
rather than one entry per event. Pure code, no I/O.
"""

from __future__ import annotations

import bisect
from typing import Callable, Iterable, Mapping

from dranspose.core.protocol import StreamName, WorkerName, WorkerTag
from dranspose.core.triggermap.compact import Route

Streams = dict[StreamName, list[WorkerName]]
Shape = tuple[Streams, frozenset[WorkerName]]
Routes = tuple[tuple[StreamName, Route], ...]

SHAPES_KEPT = 4096
"""Shapes cached at most (a map with many streams bound to many workers has many combinations)."""
PRUNE_AT = 16


class ShapeCache:
    """An event's shape by the form of its routes and the workers bound to its constraints."""

    def __init__(self) -> None:
        self.route_keys: dict[int, tuple[int, tuple[int, ...]]] = {}
        """Per routes entry of a part (by its ``id``: parts live as long as the map): its form,
        numbered in ``forms``, and the constraints it names, in order. Entries of the same form
        bound to the same workers have the same streams, whatever their constraint numbers."""
        self.forms: dict[tuple[object, ...], int] = {}
        self.shapes: dict[tuple[object, ...], Shape] = {}

    def clear(self) -> None:
        """Forget the built shapes (a worker left: broadcast routes named it)."""
        self.shapes.clear()

    def get(
        self,
        routes: Routes,
        base: int,
        bound: Mapping[int, WorkerName],
        targets: Callable[[frozenset[WorkerTag]], tuple[WorkerName, ...]],
    ) -> Shape:
        """The shape of an event with these routes, its constraints offset by ``base`` bound as
        in ``bound``; ``targets`` names the workers a broadcast with given tags reaches."""
        known = self.route_keys.get(id(routes))
        if known is None:
            form = tuple(
                (
                    stream,
                    tuple(
                        (local is None, tags if local is None else None) for local, tags in route
                    ),
                )
                for stream, route in routes
            )
            known = self.route_keys[id(routes)] = (
                self.forms.setdefault(form, len(self.forms)),
                tuple(local for _, route in routes for local, _ in route if local is not None),
            )
        form_id, locals_ = known
        if len(locals_) == 1:
            key: tuple[object, ...] = (form_id, bound[base + locals_[0]])
        else:
            key = (form_id, *[bound[base + local] for local in locals_])
        shape = self.shapes.get(key)
        if shape is None:
            if len(self.shapes) >= SHAPES_KEPT:
                self.shapes.clear()
            shape = self.shapes[key] = _build(routes, base, bound, targets)
        return shape


def _build(
    routes: Routes,
    base: int,
    bound: Mapping[int, WorkerName],
    targets: Callable[[frozenset[WorkerTag]], tuple[WorkerName, ...]],
) -> Shape:
    streams: Streams = {}
    for stream, route in routes:
        names: list[WorkerName] = []
        for local, tags in route:
            if local is None:
                names.extend(targets(tags))
            else:
                names.append(bound[base + local])
        streams[stream] = sorted(set(names)) if len(route) > 1 else names
    return streams, frozenset(w for names in streams.values() for w in names)


class ShapeHistory:
    """Per worker, the shapes of the events it alone owes: the events from ``starts[i]`` on
    (until ``starts[i + 1]``) that it owes have ``shapes[i]`` as their streams."""

    def __init__(self, workers: Iterable[WorkerName]) -> None:
        self.by_worker: dict[WorkerName, tuple[list[int], list[Streams]]] = {
            name: ([], []) for name in workers
        }
        self._prune_at: dict[WorkerName, int] = {}

    def note(self, worker: WorkerName, event: int, streams: Streams, floor: int) -> None:
        """``streams`` is the shape of ``worker``'s events from ``event`` on; the worker owes no
        event below ``floor`` any more, so shapes that only those had are forgotten."""
        starts, shapes = self.by_worker[worker]
        starts.append(event)
        shapes.append(streams)
        if len(starts) >= self._prune_at.get(worker, PRUNE_AT):
            keep = bisect.bisect_right(starts, floor) - 1
            if keep > 0:
                del starts[:keep], shapes[:keep]
            # amortised: a worker whose shape changes at every event prunes every few events
            self._prune_at[worker] = max(PRUNE_AT, 2 * len(starts))

    def streams_at(self, worker: WorkerName, event: int) -> Streams:
        """The streams of an event ``worker`` owes."""
        starts, shapes = self.by_worker[worker]
        return shapes[bisect.bisect_right(starts, event) - 1]

    def forget(self, worker: WorkerName) -> None:
        del self.by_worker[worker]
        self._prune_at.pop(worker, None)

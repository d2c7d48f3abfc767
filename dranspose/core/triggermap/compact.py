"""The compact trigger map: a validated request compiled for lookups, never expanded.

:class:`TriggerMap` keeps every distinct part once (as a :class:`CompiledPart`) and the sequence
as runs of one part repeated ``count`` times, with the first event and first constraint id of each
run. Locating event ``e`` is a binary search over the runs and a ``divmod`` inside the run, so a
10-million-event scan costs memory proportional to its parts and runs, not to its events.
"""

from __future__ import annotations

import json
import numbers
from bisect import bisect_left, bisect_right
from itertools import islice
from typing import Any, Iterable, Iterator, Mapping, Optional

from dranspose.core.protocol import EventNumber, StreamName, WorkerName, WorkerTag
from dranspose.core.triggermap.errors import TriggerMapError, show, tag_list
from dranspose.core.triggermap.request import (
    GENERIC_TAGS,
    SequenceRequest,
    StreamEntry,
    VirtualWorker,
)

_SIMPLE_BLOCK = 1024
"""Events per part in :meth:`TriggerMap.simple`: the sequence repeats it, so size is O(n / 1024)."""

_JSON_KINDS = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
"""JSON's names for what ``json.loads`` returns, for messages to people who wrote JSON."""

Route = tuple[tuple[Optional[int], frozenset[WorkerTag]], ...]
"""One stream's destinations in one event: (local constraint or None for broadcast, tags)."""


class CompiledPart:
    """A part compiled for fast lookups; shared by every occurrence of the part in the sequence.

    Constraint ids here are *local* to the part: add the occurrence's base (from
    :meth:`TriggerMap.locate` or :meth:`TriggerMap.positions`) to get the map-wide id. The fields
    are read-only by convention (one instance serves every occurrence); the assigner reads:

    * ``routes[offset]``: ``(stream, route)`` for every stream with a frame in that event;
    * ``needs[offset]``: ``(local constraint, tags)`` of every constraint the event uses;
    * ``first[local]``, ``last[local]``: the offsets of the constraint's first and last events
      in the part (a successor controller finds the bindings that span its release point);
    * ``length``: events in the part; ``span``: constraint ids one occurrence uses.
    """

    __slots__ = (
        "entries",
        "first",
        "frames",
        "last",
        "length",
        "name",
        "needs",
        "routes",
        "span",
        "tag_sites",
    )

    def __init__(
        self,
        name: str,
        mapping: Mapping[StreamName, list[StreamEntry]],
        streams: tuple[StreamName, ...],
    ) -> None:
        self.name = name
        self.length = len(mapping[streams[0]])
        self.entries = {s: mapping[s] for s in streams}
        routes = []
        needs = []
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        tag_sites: dict[frozenset[WorkerTag], tuple[StreamName, int]] = {}
        for offset in range(self.length):
            event_routes = []
            event_needs: dict[int, frozenset[WorkerTag]] = {}
            for stream in streams:
                entry = mapping[stream][offset]
                if entry is None:
                    continue
                route = tuple((vw.constraint, vw.tags) for vw in entry)
                event_routes.append((stream, route))
                for constraint, tags in route:
                    tag_sites.setdefault(tags, (stream, offset))
                    if constraint is not None:
                        event_needs[constraint] = tags
                        first.setdefault(constraint, offset)
                        last[constraint] = offset
            routes.append(tuple(event_routes))
            needs.append(tuple(event_needs.items()))
        self.routes: list[tuple[tuple[StreamName, Route], ...]] = routes
        self.needs: list[tuple[tuple[int, frozenset[WorkerTag]], ...]] = needs
        self.first = first
        self.last = last
        self.span = max(last, default=-1) + 1
        self.frames = {
            s: [i for i, entry in enumerate(mapping[s]) if entry is not None] for s in streams
        }
        self.tag_sites = tag_sites


class TriggerMap:
    """A validated trigger map, expanded lazily: O(parts + runs) memory for any number of events.

    The sequence is stored as runs of one part repeated ``count`` times, with the run's first event
    and first constraint id. ``entry``, ``events_for`` and the :class:`Assigner` locate an event
    with a binary search over the runs and ``divmod`` inside the run.
    """

    def __init__(self, request: SequenceRequest) -> None:
        self.request = request
        first = request.parts[request.sequence[0]]
        self.streams: tuple[StreamName, ...] = tuple(first)
        compiled: dict[str, CompiledPart] = {}
        self._run_part: list[CompiledPart] = []
        self._run_count: list[int] = []
        self._run_start: list[int] = []
        self._run_base: list[int] = []
        event, base = 1, 0
        for name in request.sequence:
            part = compiled.get(name)
            if part is None:
                part = compiled[name] = CompiledPart(name, request.parts[name], self.streams)
            if self._run_part and self._run_part[-1] is part:
                self._run_count[-1] += 1
            else:
                self._run_part.append(part)
                self._run_count.append(1)
                self._run_start.append(event)
                self._run_base.append(base)
            event += part.length
            base += part.span
        self._parts = compiled
        self._n = event - 1
        self._first_start: dict[str, int] = {}
        for run, part in enumerate(self._run_part):
            self._first_start.setdefault(part.name, self._run_start[run])
        # Event 0 and N + 1 go to every worker (no tags needed) on every stream.
        everyone: dict[StreamName, list[StreamEntry]] = {
            s: [[VirtualWorker(tags=frozenset(), constraint=None)]] for s in self.streams
        }
        self._reserved = CompiledPart("(start/end)", everyone, self.streams)

    # construction helpers ------------------------------------------------------------------------

    @classmethod
    def from_request_json(cls, data: bytes | str) -> TriggerMap:
        """Parse a ``{"parts": ..., "sequence": ...}`` document, as the REST layer receives it."""
        try:
            raw = json.loads(data)
        except UnicodeDecodeError as exc:
            raise TriggerMapError(
                f"trigger map is not UTF-8 text: {exc.reason} at byte {exc.start}"
            ) from exc
        except json.JSONDecodeError as exc:
            raise TriggerMapError(
                f"trigger map is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
        if not isinstance(raw, dict):
            raise TriggerMapError(
                f"trigger map must be a JSON object with 'parts' and 'sequence', "
                f"got a JSON {_JSON_KINDS.get(type(raw), type(raw).__name__)}"
            )
        return cls(SequenceRequest.model_validate(raw))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, list[Any]]) -> TriggerMap:
        """A map of one part, given as ``{stream: [entry, ...]}``; the part is called ``main``."""
        raw = {"parts": {"main": dict(mapping)}, "sequence": ["main"]}
        return cls(SequenceRequest.model_validate(raw))

    @classmethod
    def simple(
        cls, streams: Iterable[str], n_events: int, tags: Iterable[str] = GENERIC_TAGS
    ) -> TriggerMap:
        """Every event goes, with all its streams, to one fresh constraint: plain load balancing.

        Built as a block of events repeated (plus a shorter tail), so it stays small for any
        ``n_events``; event ``e`` gets constraint ``e - 1``.
        """
        streams = list(streams)
        if not isinstance(n_events, int) or isinstance(n_events, bool) or n_events < 1:
            raise TriggerMapError(f"a simple map needs at least one event, got {show(n_events)}")
        tag_list = sorted(tags)

        def block(length: int) -> dict[str, list[Any]]:
            entries = [[{"tags": tag_list, "constraint": i}] for i in range(length)]
            return dict.fromkeys(streams, entries)

        size = min(n_events, _SIMPLE_BLOCK)
        full, tail = divmod(n_events, size)
        parts = {"block": block(size)}
        sequence = ["block"] * full
        if tail:
            parts["tail"] = block(tail)
            sequence.append("tail")
        return cls(SequenceRequest.model_validate({"parts": parts, "sequence": sequence}))

    # queries -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of events including the reserved first (0) and last (``N + 1``) events."""
        return self._n + 2

    @property
    def last_event(self) -> EventNumber:
        """The reserved last event, ``N + 1``: the streams' end messages."""
        return EventNumber(self._n + 1)

    def check_event(self, event_number: int) -> None:
        """Raise ``IndexError`` unless ``event_number`` is an event of the map (0..``N + 1``)."""
        if (
            not isinstance(event_number, numbers.Integral)
            or isinstance(event_number, bool)
            or not 0 <= event_number <= self._n + 1
        ):
            raise IndexError(f"event {event_number!r} is outside the map (events 0..{self._n + 1})")

    def _check_stream(self, stream: str) -> None:
        if stream not in self._parts[self.request.sequence[0]].entries:
            known = ", ".join(map(repr, self.streams))
            raise KeyError(f"unknown stream {stream!r} (streams: {known})")

    def locate(self, event_number: int) -> tuple[CompiledPart, int, int]:
        """(part, offset in the part, constraint id base of this occurrence) of a valid event.

        The caller checks the event first (:meth:`check_event`); a lookup of one event costs one
        binary search over the runs.
        """
        if event_number == 0 or event_number == self._n + 1:
            return self._reserved, 0, 0
        run = bisect_right(self._run_start, event_number) - 1
        part = self._run_part[run]
        occurrence, offset = divmod(event_number - self._run_start[run], part.length)
        return part, offset, self._run_base[run] + occurrence * part.span

    def positions(self, start: int) -> Iterator[tuple[int, CompiledPart, int, int]]:
        """``(event, part, offset, constraint base)`` for ``start`` and every later event.

        Sequential walks (the assigner's scan and release) step through the runs with one binary
        search at the start instead of one per event. Plain tuples, not objects: this runs once
        per event of the scan.
        """
        event = start
        if event == 0:
            yield 0, self._reserved, 0, 0
            event = 1
        if event <= self._n:
            run = bisect_right(self._run_start, event) - 1
            part = self._run_part[run]
            occurrence, offset = divmod(event - self._run_start[run], part.length)
            base = self._run_base[run] + occurrence * part.span
            while True:
                yield event, part, offset, base
                event += 1
                if event > self._n:
                    break
                offset += 1
                if offset == part.length:
                    offset = 0
                    occurrence += 1
                    if occurrence == self._run_count[run]:
                        run += 1
                        part = self._run_part[run]
                        occurrence = 0
                        base = self._run_base[run]
                    else:
                        base += part.span
        if event == self._n + 1:
            yield event, self._reserved, 0, 0

    def entry(self, stream: StreamName, event_number: int) -> StreamEntry:
        """Where ``stream``'s frame of event ``event_number`` goes, with map-wide constraint ids."""
        self._check_stream(stream)
        self.check_event(event_number)
        part, offset, base = self.locate(event_number)
        entry = part.entries[stream][offset]
        if entry is None:
            return None
        return [
            vw
            if vw.constraint is None
            else VirtualWorker.model_construct(tags=vw.tags, constraint=vw.constraint + base)
            for vw in entry
        ]

    def events_for(
        self, stream: StreamName, start: int = 0, stop: Optional[int] = None
    ) -> Iterator[EventNumber]:
        """The events in ``[start, stop)`` in which ``stream`` has a frame (entry not null).

        This is what an ingester zips with the frames it reads: its k-th message belongs to the
        k-th event yielded. Lazy, and skips runs of parts in which the stream has no frame.
        """
        self._check_stream(stream)  # here, not on the first next()
        stop = len(self) if stop is None else min(stop, len(self))
        return self._frame_events(stream, max(start, 0), stop)

    def _frame_events(self, stream: StreamName, start: int, stop: int) -> Iterator[EventNumber]:
        if start == 0 < stop:
            yield EventNumber(0)
        for run in range(max(0, bisect_right(self._run_start, start) - 1), len(self._run_part)):
            part = self._run_part[run]
            offsets = part.frames[stream]
            run_start = self._run_start[run]
            run_stop = run_start + part.length * self._run_count[run]
            if not offsets or run_stop <= start:
                continue
            if run_start >= stop:
                break
            occurrence = max(0, (start - run_start) // part.length)
            while occurrence < self._run_count[run]:
                occ_start = run_start + occurrence * part.length
                if occ_start >= stop:
                    return
                for offset in islice(offsets, bisect_left(offsets, start - occ_start), None):
                    event = occ_start + offset
                    if event >= stop:
                        return
                    yield EventNumber(event)
                occurrence += 1
        if start <= self._n + 1 < stop:
            yield EventNumber(self._n + 1)

    def first_event_of(self, part_name: str, offset: int) -> EventNumber:
        """The map-wide number of the first occurrence of a part's event ``offset``."""
        if part_name not in self._first_start:
            raise KeyError(f"part {part_name!r} is not in the sequence")
        return EventNumber(self._first_start[part_name] + offset)

    def validate_against(self, workers: Mapping[WorkerName, Iterable[str]]) -> None:
        """Refuse the map if some virtual worker's tags are not all held by any registered worker.

        Such a frame could never be delivered: a constraint would never bind and the scan would
        stall at that event. The error names the earliest such event, its stream and the tags.
        """
        held = [(name, frozenset(tags)) for name, tags in sorted(workers.items())]
        if not held:
            raise TriggerMapError(
                "no workers registered: event 0 (the start messages) goes to every worker on "
                f"every stream, starting with stream {self.streams[0]!r}"
            )
        sites: list[tuple[int, StreamName, str, int, frozenset[WorkerTag]]] = []
        for part in self._parts.values():
            for tags, (stream, offset) in part.tag_sites.items():
                first = self.first_event_of(part.name, offset)
                sites.append((first, stream, part.name, offset, tags))
        sites.sort(key=lambda site: (site[0], self.streams.index(site[1])))
        failing: list[tuple[int, StreamName, str, int, frozenset[WorkerTag]]] = []
        for site in sites:
            servable = any(site[4] <= have for _, have in held)
            if not servable and site[4] not in (f[4] for f in failing):
                failing.append(site)
        if failing:
            event, stream, part_name, offset, tags = failing[0]
            registered = ", ".join(f"{name!r} {tag_list(have)}" for name, have in held)
            more = f" (and {len(failing) - 1} more tag sets)" if len(failing) > 1 else ""
            raise TriggerMapError(
                f"stream {stream!r}, event {event} (part {part_name!r}, event {offset}): no "
                f"registered worker has all the tags {tag_list(tags)}; registered: "
                f"{registered}{more}"
            )

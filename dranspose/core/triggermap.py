"""The trigger map: which workers get which stream's frame in which event, and who takes what next.

A trigger map says, for every stream and every event, where that stream's frame goes:

* ``null``: the stream has no frame in this event (a slower stream skips events);
* ``[]``: the frame exists but is discarded;
* a list of virtual workers ``{"tags": [...], "constraint": c}``. Every place in the map that names
  the same constraint ``c`` is served by the same real worker, so frames of several streams, or of
  several events, meet in one process. A constraint is bound to a real worker that has all of its
  tags when that worker asks for work. ``"constraint": null`` broadcasts: every worker with the
  tags gets the frame. An empty tag list is satisfied by every worker.

Maps travel as a *sequence* so that long scans stay small on the wire: named parts (each a
``{stream: [entry, ...]}`` mapping) and the order to concatenate them in. Constraint numbers belong
to one occurrence of a part: a part repeated a thousand times describes a thousand different
bindings, not one worker doing everything. Occurrence ``k`` adds ``base_k`` to its constraints,
where ``base_k`` is the sum of ``largest constraint + 1`` over the occurrences before it; so ids
stay unique in the whole map however large the numbers users pick. The map gains a reserved first
event 0 and last event ``N + 1`` (the streams' start and end messages), which go to every worker on
every stream; the parts' events are ``1..N``.

The map is never expanded. :class:`TriggerMap` keeps the distinct parts once and the sequence as
runs of repeated parts with the first event and first constraint id of each run, so locating event
``e`` is a binary search over the runs and a ``divmod`` inside the run. A 10-million-event scan
costs memory proportional to its parts and to the runs of its sequence, not to its events.

:class:`Assigner` hands out events in batches as workers ask for them (faster workers ask more
often and so take more events) and releases them strictly in event order, which is the order the
ingesters read frames in.

Error messages name the part and the event as the user wrote them: ``event 3`` inside a part is the
fourth entry (0-based position) of that part's lists. Everything here is pure: no I/O, no clocks.
"""

from __future__ import annotations

import heapq
import json
import numbers
from bisect import bisect_left, bisect_right
from itertools import islice
from typing import Any, Iterable, Iterator, Mapping, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from dranspose.core.protocol import EventNumber, StreamName, WorkerName, WorkerTag

GENERIC_TAGS: frozenset[WorkerTag] = frozenset({WorkerTag("generic")})
"""Tags a virtual worker needs when the map names none; workers have ``generic`` by default."""

_SIMPLE_BLOCK = 1024
"""Events per part in :meth:`TriggerMap.simple`: the sequence repeats it, so size is O(n / 1024)."""

_MAX_REPORTED_ERRORS = 3


_JSON_KINDS = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}
"""JSON's names for what ``json.loads`` returns, for messages to people who wrote JSON."""


class TriggerMapError(ValueError):
    """A trigger map is malformed or cannot be served; the message names the place at fault."""


class AssignmentError(ValueError):
    """The assigner was asked something impossible: an unknown worker, an unknown completion."""


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tag_list(tags: Iterable[str]) -> str:
    return "[" + ", ".join(repr(t) for t in sorted(tags)) + "]"


# --- turning pydantic's errors into messages that name the part, stream and event ----------------

_SHAPES = {
    1: "parts must be an object mapping part names to mappings",
    2: "must be an object mapping stream names to lists of entries",
    3: "must be a list with one entry per event",
    4: "entry must be null, [] or a list of virtual workers",
    5: 'virtual worker must be an object like {"tags": ["generic"], "constraint": 0}',
}


def _place(loc: tuple[Any, ...]) -> str:
    """``part 'p', stream 's', event 3`` or ``sequence position 2`` for a location in a request."""
    if loc[:1] == ("sequence",):
        return "sequence" if len(loc) == 1 else f"sequence position {loc[1]}"
    if loc[:1] != ("parts",):
        return ""
    where = [f"{label} {item!r}" for label, item in zip(("part", "stream"), loc[1:3])]
    if len(loc) > 3:
        where.append(f"event {loc[3]}")
    return ", ".join(where)


def _explain(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    """One pydantic error as a sentence that starts with where the fault is."""
    raw_loc = tuple(error["loc"])
    loc = tuple(item for item in raw_loc if item != "[key]")
    kind = error["type"]
    # Virtual worker fields (tags, constraint) are named by the message itself, not the location.
    place = _place(loc[:4])
    cause = error.get("ctx", {}).get("error")
    got = f", got {_show(error.get('input'))}"
    if isinstance(cause, TriggerMapError):
        message = str(cause)
    elif kind == "missing":
        place = _place(loc[:-1][:4]) if len(loc) > 1 else ""
        message = f"missing field {loc[-1]!r}"
    elif kind == "extra_forbidden":
        owner = VirtualWorker if len(loc) == 6 else model
        expected = ", ".join(repr(name) for name in owner.model_fields)
        message = f"unknown field {loc[-1]!r} (expected {expected})"
    elif "[key]" in raw_loc:
        message = f"name must be a string{got}"
    elif loc[:1] == ("sequence",):
        if len(loc) == 1:
            message = "must be a list of part names" + got
        else:
            message = "part name must be a string" + got
    elif loc[:1] == ("parts",) and len(loc) in _SHAPES:
        message = _SHAPES[len(loc)] + got
        if len(loc) == 1:
            place = ""
    elif kind == "json_invalid":
        message = error["msg"]  # "Invalid JSON: ... at line 1 column 10"
    elif not loc:
        expected = " and ".join(repr(name) for name in model.model_fields)
        message = f"{model.__name__} must be an object with {expected}{got}"
    else:
        message = f"{error['msg']}{got}"
    return f"{place}: {message}" if place else message


def _translate(exc: ValidationError, model: type[BaseModel]) -> TriggerMapError:
    errors = exc.errors()
    for error in errors:
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, TriggerMapError) and not error["loc"]:
            return cause  # a whole-map check already wrote the full message
    messages = [_explain(error, model) for error in errors[:_MAX_REPORTED_ERRORS]]
    if len(errors) > _MAX_REPORTED_ERRORS:
        messages.append(f"and {len(errors) - _MAX_REPORTED_ERRORS} more errors")
    return TriggerMapError("; ".join(messages))


class _Checked(BaseModel):
    """Validation raises :class:`TriggerMapError` instead of pydantic's ``ValidationError``.

    One error type with one message style for every caller, the REST layer included (it maps
    ``TriggerMapError`` to HTTP 422 and shows the message as it is).
    """

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _translate(exc, type(self)) from exc

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise _translate(exc, cls) from exc

    @classmethod
    def model_validate_json(  # type: ignore[override]
        cls, json_data: Any, *args: Any, **kwargs: Any
    ) -> Any:
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except ValidationError as exc:
            raise _translate(exc, cls) from exc


class VirtualWorker(_Checked):
    """Where a frame goes: each worker with ``tags`` (broadcast) or the one bound to ``constraint``.

    Frozen because the lazily expanded map shares one instance between every repetition of a part:
    changing it in one event would silently change the same event of every other occurrence.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tags: frozenset[WorkerTag] = GENERIC_TAGS
    constraint: Optional[int] = None

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_are_strings(cls, value: Any) -> Any:
        # Checked by hand: a bare string would otherwise be taken for a collection of letters.
        if isinstance(value, (list, tuple, set, frozenset)) and all(
            isinstance(tag, str) and tag for tag in value
        ):
            return frozenset(value)
        raise TriggerMapError(f"tags must be a list of non-empty strings, got {_show(value)}")

    @field_validator("constraint", mode="before")
    @classmethod
    def _constraint_is_natural(cls, value: Any) -> Any:
        # Strict on purpose: "3", 3.0 or true as a constraint are typos, not numbers to coerce.
        if value is None:
            return None
        if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0:
            return int(value)
        raise TriggerMapError(f"constraint must be a non-negative integer, got {_show(value)}")

    @field_serializer("tags")
    def _sorted_tags(self, tags: frozenset[WorkerTag]) -> list[str]:
        return sorted(tags)


StreamEntry = Optional[list[VirtualWorker]]
"""``None``: no frame; ``[]``: frame discarded; otherwise the frame's destinations."""

MappingPart = dict[StreamName, list[StreamEntry]]
"""One part of a sequence: for every stream, one entry per event of the part."""


class SequenceRequest(_Checked):
    """A trigger map as it crosses processes: named parts and the order to concatenate them in.

    Construction and ``model_validate*`` raise :class:`TriggerMapError` naming the part, stream and
    event at fault. Every part is checked, also parts the sequence does not use.
    """

    model_config = ConfigDict(extra="forbid")

    parts: dict[str, MappingPart]
    sequence: list[str]

    @model_validator(mode="after")
    def _consistent(self) -> SequenceRequest:
        if not self.sequence:
            raise TriggerMapError("sequence is empty: it must name at least one part")
        for position, name in enumerate(self.sequence):
            if name not in self.parts:
                known = ", ".join(repr(p) for p in self.parts) or "none"
                raise TriggerMapError(
                    f"sequence position {position}: unknown part {name!r} (parts: {known})"
                )
        reference_part = self.sequence[0]
        reference_streams = list(self.parts[reference_part])
        for name, part in self.parts.items():
            _check_part_shape(name, part)
            missing = [s for s in reference_streams if s not in part]
            extra = [s for s in part if s not in self.parts[reference_part]]
            if missing or extra:
                what = [f"missing stream {s!r}" for s in missing]
                what += [f"unexpected stream {s!r}" for s in extra]
                raise TriggerMapError(
                    f"part {name!r}: {', '.join(what)}; every part needs the same streams as "
                    f"part {reference_part!r} ({', '.join(repr(s) for s in reference_streams)})"
                )
            _check_constraints(name, part)
        return self


def _check_part_shape(name: str, part: MappingPart) -> None:
    """Every stream of a part has the same, non-zero number of entries."""
    if not part:
        raise TriggerMapError(f"part {name!r} has no streams")
    streams = list(part)
    first = streams[0]
    length = len(part[first])
    for stream in streams[1:]:
        other = len(part[stream])
        if other != length:
            raise TriggerMapError(
                f"part {name!r}, stream {stream!r}, event {min(other, length)}: stream {stream!r} "
                f"has {other} entries but stream {first!r} has {length}; every stream of a part "
                f"needs one entry (null when it has no frame) per event"
            )
    if length == 0:
        raise TriggerMapError(
            f"part {name!r}, stream {first!r}, event 0: the part has no events; every stream "
            f"needs at least one entry"
        )


def _check_constraints(name: str, part: MappingPart) -> None:
    """A constraint is one real worker, so its uses need the same tags; no entry repeats itself."""
    seen: dict[int, tuple[frozenset[WorkerTag], StreamName, int]] = {}
    streams = list(part)
    for event in range(len(part[streams[0]])):
        for stream in streams:
            entry = part[stream][event]
            if entry is None:
                continue
            in_entry: set[tuple[Optional[int], frozenset[WorkerTag]]] = set()
            for vw in entry:
                key = (vw.constraint, vw.tags if vw.constraint is None else frozenset())
                if key in in_entry:
                    what = (
                        f"constraint {vw.constraint}"
                        if vw.constraint is not None
                        else f"broadcast to tags {_tag_list(vw.tags)}"
                    )
                    raise TriggerMapError(
                        f"part {name!r}, stream {stream!r}, event {event}: {what} is listed twice"
                    )
                in_entry.add(key)
                if vw.constraint is None:
                    continue
                first = seen.setdefault(vw.constraint, (vw.tags, stream, event))
                if first[0] != vw.tags:
                    raise TriggerMapError(
                        f"part {name!r}, stream {stream!r}, event {event}: constraint "
                        f"{vw.constraint} has tags {_tag_list(vw.tags)} here but "
                        f"{_tag_list(first[0])} at stream {first[1]!r}, event {first[2]}; one "
                        f"constraint is one real worker, so its tags must agree"
                    )


# --- the lazily expanded map ---------------------------------------------------------------------

_Route = tuple[tuple[Optional[int], frozenset[WorkerTag]], ...]
"""One stream's destinations in one event: (local constraint or None for broadcast, tags)."""


class _Part:
    """A part compiled for fast lookups; shared by every occurrence of the part in the sequence."""

    __slots__ = (
        "entries",
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
                        last[constraint] = offset
            routes.append(tuple(event_routes))
            needs.append(tuple(event_needs.items()))
        self.routes: list[tuple[tuple[StreamName, _Route], ...]] = routes
        self.needs: list[tuple[tuple[int, frozenset[WorkerTag]], ...]] = needs
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
        compiled: dict[str, _Part] = {}
        self._run_part: list[_Part] = []
        self._run_count: list[int] = []
        self._run_start: list[int] = []
        self._run_base: list[int] = []
        event, base = 1, 0
        for name in request.sequence:
            part = compiled.get(name)
            if part is None:
                part = compiled[name] = _Part(name, request.parts[name], self.streams)
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
        everyone = {s: [[VirtualWorker(tags=frozenset(), constraint=None)]] for s in self.streams}
        self._reserved = _Part("(start/end)", everyone, self.streams)

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
            raise TriggerMapError(f"a simple map needs at least one event, got {_show(n_events)}")
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

    def _check_event(self, event_number: int) -> None:
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

    def _locate(self, event_number: int) -> tuple[_Part, int, int]:
        """(part, offset in the part, constraint id base of this occurrence) of a valid event."""
        if event_number == 0 or event_number == self._n + 1:
            return self._reserved, 0, 0
        run = bisect_right(self._run_start, event_number) - 1
        part = self._run_part[run]
        occurrence, offset = divmod(event_number - self._run_start[run], part.length)
        return part, offset, self._run_base[run] + occurrence * part.span

    def _positions(self, start: int) -> Iterator[tuple[int, _Part, int, int]]:
        """``(event, part, offset, constraint base)`` for ``start`` and every later event.

        Sequential walks (the assigner's scan and release) step through the runs with one binary
        search at the start instead of one per event.
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
        self._check_event(event_number)
        part, offset, base = self._locate(event_number)
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
        failing = []
        for site in sites:
            servable = any(site[4] <= have for _, have in held)
            if not servable and site[4] not in (f[4] for f in failing):
                failing.append(site)
        if failing:
            event, stream, part_name, offset, tags = failing[0]
            registered = ", ".join(f"{name!r} {_tag_list(have)}" for name, have in held)
            more = f" (and {len(failing) - 1} more tag sets)" if len(failing) > 1 else ""
            raise TriggerMapError(
                f"stream {stream!r}, event {event} (part {part_name!r}, event {offset}): no "
                f"registered worker has all the tags {_tag_list(tags)}; registered: "
                f"{registered}{more}"
            )


# --- dynamic assignment --------------------------------------------------------------------------


class Assignment(BaseModel):
    """Which real workers get which stream's frame in one event.

    Ingesters route by it; workers learn from it which events and streams to expect. A stream
    absent from ``streams`` has no frame in this event; an empty list means the frame is dropped.
    """

    event_number: EventNumber
    streams: dict[StreamName, list[WorkerName]]


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
            raise AssignmentError(f"max_events must be a positive integer, got {_show(max_events)}")
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
            for event, part, offset, base in self.trigger_map._positions(self._horizon):
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
        for event, part, offset, base in self.trigger_map._positions(self._frontier):
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
        self, event_number: int, located: Optional[tuple[_Part, int, int]] = None
    ) -> Assignment:
        part, offset, base = located or self.trigger_map._locate(event_number)
        streams: dict[StreamName, list[WorkerName]] = {}
        for stream, route in part.routes[offset]:
            names: list[WorkerName] = []
            for local, tags in route:
                if local is None:
                    names.extend(self._targets(tags))
                else:
                    names.append(self._bound[base + local])
            streams[stream] = sorted(set(names)) if len(route) > 1 else names
        # Validating construction: pydantic-core checks these small dicts faster than
        # model_construct builds them in Python.
        return Assignment(event_number=EventNumber(event_number), streams=streams)

    def assignments_for_event(self, event_number: int) -> Optional[Assignment]:
        """The event's assignment once all its constraints are bound; ``None`` before that.

        Released events are kept until all their workers completed them. For an event bound but
        not yet released the answer can still change if one of its workers is forgotten.
        """
        self.trigger_map._check_event(event_number)
        if event_number < self._frontier:
            if event_number not in self._released:
                raise KeyError(
                    f"event {event_number} is completed; its assignment is no longer kept"
                )
            return self._released[event_number]
        part, offset, base = self.trigger_map._locate(event_number)
        if all(local + base in self._bound for local, _ in part.needs[offset]):
            return self._build(event_number)
        return None

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
                moved.append(Assignment(event_number=EventNumber(event), streams=fresh))
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

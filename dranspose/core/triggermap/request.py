"""The trigger map as a request: the pydantic schema, its checks and readable error messages.

What crosses processes (``POST /api/v1/sequence``, Python callers) is a :class:`SequenceRequest`:
named parts, each ``{stream: [entry, ...]}``, and the order to concatenate them in. Validating one
checks every part completely and raises :class:`TriggerMapError` whose message names the part,
stream and event (0-based position in the part) at fault, never pydantic's own error listing.
"""

from __future__ import annotations

import numbers
from typing import Any, Mapping, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from dranspose.core.protocol import StreamName, WorkerTag
from dranspose.core.triggermap.errors import TriggerMapError, show, tag_list

GENERIC_TAGS: frozenset[WorkerTag] = frozenset({WorkerTag("generic")})
"""Tags a virtual worker needs when the map names none; workers have ``generic`` by default."""

_MAX_REPORTED_ERRORS = 3
"""Errors quoted in one message; a map with hundreds of bad entries gets a count of the rest."""

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
    got = f", got {show(error.get('input'))}"
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
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise _translate(exc, cls) from exc

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> Any:
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
        raise TriggerMapError(f"tags must be a list of non-empty strings, got {show(value)}")

    @field_validator("constraint", mode="before")
    @classmethod
    def _constraint_is_natural(cls, value: Any) -> Any:
        # Strict on purpose: "3", 3.0 or true as a constraint are typos, not numbers to coerce.
        if value is None:
            return None
        if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 0:
            return int(value)
        raise TriggerMapError(f"constraint must be a non-negative integer, got {show(value)}")

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
                        else f"broadcast to tags {tag_list(vw.tags)}"
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
                        f"{vw.constraint} has tags {tag_list(vw.tags)} here but "
                        f"{tag_list(first[0])} at stream {first[1]!r}, event {first[2]}; one "
                        f"constraint is one real worker, so its tags must agree"
                    )

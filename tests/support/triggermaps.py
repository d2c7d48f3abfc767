"""Trigger maps shared by the unit tests of the map and the REST tests of the controller."""

from __future__ import annotations

from typing import Any


def vw(constraint=None, tags=("generic",)):
    """A virtual worker entry of a trigger map."""
    return {"tags": list(tags), "constraint": constraint}


def one_part(mapping, sequence=("main",)):
    """A map of one part named ``main``, played once (or as ``sequence`` says)."""
    return {"parts": {"main": mapping}, "sequence": list(sequence)}


def C(constraint: int, tags: tuple[str, ...] = ("generic",)) -> list[dict[str, Any]]:
    """An entry sending the frame to the one worker bound to ``constraint``."""
    return [{"tags": list(tags), "constraint": constraint}]


def BROADCAST(tags: tuple[str, ...] = ("generic",)) -> list[dict[str, Any]]:
    """An entry sending the frame to every worker with these tags."""
    return [{"tags": list(tags), "constraint": None}]


DISCARD: list = []


def simple(streams: list[str], n: int) -> dict[str, Any]:
    """``n`` events, event ``i`` of every stream to the worker bound to constraint ``i``."""
    return one_part({s: [C(i) for i in range(n)] for s in streams})


# Invalid maps and the exact message each is refused with (SequenceRequest validation).
INVALID = {
    "unequal lengths": (
        one_part({"eiger": [[vw(0)], [vw(1)], None], "orca": [None, None]}),
        "part 'main', stream 'orca', event 2: stream 'orca' has 2 entries but stream 'eiger' has "
        "3; every stream of a part needs one entry (null when it has no frame) per event",
    ),
    "unknown part": (
        one_part({"s": [None]}, ["main", "mian"]),
        "sequence position 1: unknown part 'mian' (parts: 'main')",
    ),
    "empty sequence": (
        one_part({"s": [None]}, []),
        "sequence is empty: it must name at least one part",
    ),
    "entry of wrong type": (
        one_part({"eiger": [None, 5]}),
        "part 'main', stream 'eiger', event 1: entry must be null, [] or a list of virtual "
        "workers, got 5",
    ),
    "virtual worker of wrong type": (
        one_part({"eiger": [[3]]}),
        "part 'main', stream 'eiger', event 0: virtual worker must be an object like "
        '{"tags": ["generic"], "constraint": 0}, got 3',
    ),
    "stream not a list": (
        one_part({"eiger": {"0": None}}),
        "part 'main', stream 'eiger': must be a list with one entry per event, got {'0': None}",
    ),
    "tags not a list": (
        one_part({"eiger": [None, [{"tags": "gpu", "constraint": 0}]]}),
        "part 'main', stream 'eiger', event 1: tags must be a list of non-empty strings, got 'gpu'",
    ),
    "negative constraint": (
        one_part({"eiger": [None, None, None, [vw(-1)]]}),
        "part 'main', stream 'eiger', event 3: constraint must be a non-negative integer, got -1",
    ),
    "fractional constraint": (
        one_part({"eiger": [[vw(1.5)]]}),
        "part 'main', stream 'eiger', event 0: constraint must be a non-negative integer, got 1.5",
    ),
    "boolean constraint": (
        one_part({"eiger": [[vw(True)]]}),
        "part 'main', stream 'eiger', event 0: constraint must be a non-negative integer, got True",
    ),
    "misspelt field": (
        one_part({"eiger": [[{"constrain": 1}]]}),
        "part 'main', stream 'eiger', event 0: unknown field 'constrain' (expected 'tags', "
        "'constraint')",
    ),
    "inconsistent tags": (
        one_part({"eiger": [[vw(2)], None], "orca": [None, [vw(2, ["gpu"])]]}),
        "part 'main', stream 'orca', event 1: constraint 2 has tags ['gpu'] here but ['generic'] "
        "at stream 'eiger', event 0; one constraint is one real worker, so its tags must agree",
    ),
    "constraint twice in one entry": (
        one_part({"eiger": [[vw(1), vw(1)]]}),
        "part 'main', stream 'eiger', event 0: constraint 1 is listed twice",
    ),
    "parts with different streams": (
        {"parts": {"a": {"eiger": [None]}, "b": {"orca": [None]}}, "sequence": ["a", "b"]},
        "part 'b': missing stream 'eiger', unexpected stream 'orca'; every part needs the same "
        "streams as part 'a' ('eiger')",
    ),
    "part without streams": (one_part({}), "part 'main' has no streams"),
    "part without events": (
        one_part({"eiger": []}),
        "part 'main', stream 'eiger', event 0: the part has no events; every stream needs at "
        "least one entry",
    ),
    "sequence item not a string": (
        one_part({"s": [None]}, ["main", 3]),
        "sequence position 1: part name must be a string, got 3",
    ),
    "missing sequence": ({"parts": {"main": {"s": [None]}}}, "missing field 'sequence'"),
}

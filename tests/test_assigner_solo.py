"""Events for one worker alone: the assigner keeps them as ranges with shared shapes and releases
them as runs. What it answers about them (completions, re-delivery, loss, lookups) must be what
the map says, event by event, however often an event's shape changes.

The expected streams are worked out here from the map's definition, not read back from the
assigner: in event ``i`` (1..N) stream ``img`` always has a frame, ``pos`` has one in every third
event, is discarded (``[]``) after it and absent (``null``) in the third; both streams of an event
go to its one constraint, so every event but the start and end broadcasts is one worker's alone.
"""

from __future__ import annotations

import pytest

from dranspose.core.coordination import runs_of
from dranspose.core.triggermap import Assigner, AssignmentError, TriggerMap
from tests.support.triggermaps import vw

N = 40
WORKERS = {"a": ["generic"], "b": ["generic"]}


def mixed_map() -> TriggerMap:
    return mixed_map_of(N)


def mixed_map_of(n: int) -> TriggerMap:
    img, pos = [], []
    for i in range(1, n + 1):
        img.append([vw(i - 1)])
        pos.append([vw(i - 1)] if i % 3 == 0 else ([] if i % 3 == 1 else None))
    return TriggerMap.from_mapping({"img": img, "pos": pos})


def expected_streams(event: int, worker: str) -> dict[str, list[str]]:
    if event % 3 == 0:
        return {"img": [worker], "pos": [worker]}
    if event % 3 == 1:
        return {"img": [worker], "pos": []}
    return {"img": [worker]}


def test_released_events_carry_the_streams_the_map_gives_them() -> None:
    assigner = Assigner(mixed_map(), WORKERS)
    released = assigner.request("a", 12) + assigner.request("b", 12)
    assert [a.event_number for a in released] == list(range(25))
    assert released[0].streams == {"img": ["a", "b"], "pos": ["a", "b"]}  # the start broadcast
    for a in released[1:]:
        owner = "a" if a.event_number <= 12 else "b"
        assert a.streams == expected_streams(a.event_number, owner), a.event_number


def test_runs_are_the_same_events_as_one_by_one() -> None:
    one_by_one, in_runs = Assigner(mixed_map(), WORKERS), Assigner(mixed_map(), WORKERS)
    for worker, count in [("a", 5), ("b", 7), ("a", 1), ("b", 30)]:
        events = one_by_one.request(worker, count)
        runs = in_runs.request_runs(worker, count)
        expanded = [(e, run.streams) for run in runs for e in run.events()]
        assert expanded == [(a.event_number, a.streams) for a in events]
        assert runs == runs_of(events)  # consecutive events of one shape make one run


def test_completion_settles_a_solo_event_once() -> None:
    assigner = Assigner(mixed_map(), WORKERS)
    assigner.request("a", 3)  # 0 (broadcast), 1, 2, 3
    assert assigner.complete(2, "a") is True
    with pytest.raises(AssignmentError, match="worker 'a' has no outstanding event 2"):
        assigner.complete(2, "a")
    with pytest.raises(AssignmentError, match="worker 'b' has no outstanding event 3"):
        assigner.complete(3, "b")
    assert assigner.complete(0, "a") is False  # b still owes the broadcast
    assert assigner.complete(0, "b") is True
    assert assigner.waiting_for(1) == {"a"} and assigner.waiting_for(2) == frozenset()


def test_lookup_of_released_events_until_completed() -> None:
    assigner = Assigner(mixed_map(), WORKERS)
    assigner.request("a", 30)
    for event in range(1, 31):
        found = assigner.assignments_for_event(event)
        assert found is not None and found.streams == expected_streams(event, "a")
    assigner.complete(7, "a")
    with pytest.raises(KeyError, match="event 7 is completed"):
        assigner.assignments_for_event(7)


def test_reassignment_moves_each_event_with_the_streams_it_had() -> None:
    assigner = Assigner(mixed_map(), WORKERS)
    assigner.request("a", 30)  # 0..30: the shape changes at every event
    done = set(range(1, 30, 4))
    for event in done:
        assigner.complete(event, "a")
    assigner.complete(0, "b")  # b completed its share of the broadcast; a did not
    dropped = assigner.drop_worker("a", redeliver=True)
    owed = [e for e in range(1, 31) if e not in done]
    assert dropped.lost == []
    # only the streams with a frame for "a" are delivered again; the broadcast settles with it
    assert [(m.event_number, m.streams, m.redelivered) for m in dropped.moved] == [
        (e, {s: ["b"] for s, names in expected_streams(e, "a").items() if names}, True)
        for e in owed
    ]
    assert dropped.settled == [0]
    for event in owed:  # now b's, with every stream of the event
        found = assigner.assignments_for_event(event)
        assert found is not None and found.streams == expected_streams(event, "b")
        assert assigner.complete(event, "b") is True


def test_forgetting_a_worker_loses_exactly_its_uncompleted_events() -> None:
    assigner = Assigner(mixed_map(), WORKERS)
    assigner.request("a", 10)  # 0..10
    assigner.request("b", 10)  # 11..20
    for event in (3, 4, 10):
        assigner.complete(event, "a")
    dropped = assigner.drop_worker("a", redeliver=False)
    lost = [0, 1, 2, 5, 6, 7, 8, 9]
    assert dropped.lost == lost
    assert dropped.settled == lost[1:]  # b still owes the broadcast 0
    assert dropped.moved == []
    assert assigner.complete(12, "b") is True  # b's own events are untouched
    # the next events go to b, with b's names
    released = assigner.request("b", 5)
    assert [(a.event_number, a.streams) for a in released] == [
        (e, expected_streams(e, "b")) for e in range(21, 26)
    ]


def test_a_long_scan_keeps_shapes_only_for_events_still_owed() -> None:
    events = 3000
    assigner = Assigner(mixed_map_of(events), WORKERS)
    owed: dict[str, list[int]] = {"a": [], "b": []}
    while not assigner.done():
        for worker in ("a", "b"):
            for run in assigner.request_runs(worker, 25):
                owed[worker].extend(e for e in run.events() if e not in (0, events + 1))
            # completions lag: the last 60 events of each worker stay owed
            for event in owed[worker][:-60]:
                assert assigner.complete(event, worker) is True
            del owed[worker][:-60]
    # the shapes of events long completed were forgotten (the shape changes at every event) ...
    assert all(kept <= 2 * 60 + 16 for kept in assigner.remembered_shapes.values())
    # ... and those still owed are re-delivered with the streams they had
    dropped = assigner.drop_worker("a", redeliver=True)
    assert [(m.event_number, m.streams) for m in dropped.moved] == [
        (e, {s: ["b"] for s, names in expected_streams(e, "a").items() if names}) for e in owed["a"]
    ]

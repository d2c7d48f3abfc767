"""The trigger map (what goes where) and the assigner (who takes what, when).

Expected values are worked out from the documented semantics: the parts' events are numbered from
1 (event 0 and N + 1 are the reserved start/end broadcasts), and occurrence k of a part adds to its
constraints the sum of (largest constraint + 1) over the occurrences before it.
"""

import json
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dranspose.core.triggermap import (
    Assigner,
    Assignment,
    AssignmentError,
    SequenceRequest,
    TriggerMap,
    TriggerMapError,
    VirtualWorker,
)
from tests.support.triggermaps import INVALID, one_part, vw

GENERIC2 = {"a": ["generic"], "b": ["generic"]}


def numbers(assignments):
    return [a.event_number for a in assignments]


def routes(assignments):
    return {a.event_number: a.streams for a in assignments}


def drain(assigner, order, batch=1):
    """Let the workers in ``order`` ask in turn until everything is released."""
    out = []
    for _ in range(10_000):
        if assigner.done():
            return out
        for worker in order:
            out.extend(assigner.request(worker, batch))
    raise AssertionError("the assigner made no progress")


# --- the virtual worker --------------------------------------------------------------------------


def test_virtual_worker_defaults_to_generic_broadcast():
    worker = VirtualWorker()
    assert worker.tags == {"generic"}
    assert worker.constraint is None


def test_virtual_worker_json_form():
    worker = VirtualWorker(tags={"gpu", "generic"}, constraint=3)
    assert json.loads(worker.model_dump_json()) == {"tags": ["generic", "gpu"], "constraint": 3}
    assert VirtualWorker.model_validate_json('{"tags": ["gpu"], "constraint": 3}') == VirtualWorker(
        tags={"gpu"}, constraint=3
    )


def test_virtual_worker_refuses_a_string_constraint():
    with pytest.raises(TriggerMapError) as info:
        VirtualWorker(constraint="3")
    assert str(info.value) == "constraint must be a non-negative integer, got '3'"


# --- entries of the map --------------------------------------------------------------------------


def test_null_entry_means_the_stream_has_no_frame_in_that_event():
    tm = TriggerMap.from_mapping({"eiger": [[vw(0)], [vw(1)]], "orca": [[vw(0)], None]})
    assert tm.entry("orca", 2) is None
    released = Assigner(tm, {"a": ["generic"]}).request("a", 10)
    assert routes(released)[2] == {"eiger": ["a"]}


def test_empty_entry_means_the_frame_exists_and_is_discarded():
    tm = TriggerMap.from_mapping({"eiger": [[vw(0)]], "orca": [[]]})
    released = Assigner(tm, {"a": ["generic"]}).request("a", 10)
    assert routes(released)[1] == {"eiger": ["a"], "orca": []}


def test_broadcast_goes_to_every_worker_with_the_tags_without_being_requested():
    tm = TriggerMap.from_mapping({"s": [[vw(None, ["gpu"])]]})
    workers = {"cpu": ["generic"], "g1": ["gpu"], "g2": ["gpu", "generic"]}
    released = Assigner(tm, workers).request("cpu", 1)
    assert routes(released)[1] == {"s": ["g1", "g2"]}


def test_fresh_constraint_binds_to_the_worker_that_asks():
    tm = TriggerMap.from_mapping({"s": [[vw(0)], [vw(1)]]})
    assigner = Assigner(tm, GENERIC2)
    assert routes(assigner.request("b", 1))[1] == {"s": ["b"]}
    assert routes(assigner.request("a", 1))[2] == {"s": ["a"]}


def test_two_streams_with_one_constraint_meet_in_one_worker():
    tm = TriggerMap.from_mapping({"eiger": [[vw(4)]], "orca": [[vw(4)]]})
    released = Assigner(tm, GENERIC2).request("b", 1)
    assert routes(released)[1] == {"eiger": ["b"], "orca": ["b"]}


def test_constraint_spanning_consecutive_events_goes_to_one_worker():
    # events 1 and 2 share constraint 5; event 3 has its own
    tm = TriggerMap.from_mapping({"s": [[vw(5)], [vw(5)], [vw(6)]]})
    assigner = Assigner(tm, GENERIC2)
    first = assigner.request("a", 1)
    assert numbers(first) == [0, 1, 2]
    assert routes(first)[1] == routes(first)[2] == {"s": ["a"]}
    second = assigner.request("b", 1)
    assert routes(second) == {3: {"s": ["b"]}, 4: {"s": ["a", "b"]}}


def test_constraint_and_broadcast_in_one_entry_are_merged():
    tm = TriggerMap.from_mapping({"s": [[vw(0), vw(None, ["gpu"])]]})
    workers = {"a": ["generic"], "b": ["generic", "gpu"], "c": ["gpu"]}
    released = Assigner(tm, workers).request("a", 1)
    assert routes(released)[1] == {"s": ["a", "b", "c"]}


def test_worker_never_gets_an_event_needing_tags_it_lacks():
    gpu = ["gpu"]
    tm = TriggerMap.from_mapping({"s": [[vw(0, gpu)], [vw(1)], [vw(2, gpu)]]})
    assigner = Assigner(tm, {"cpu": ["generic"], "gpu": ["gpu"]})
    # cpu takes event 2 but event 1 waits for the gpu worker, so only the start is released
    assert numbers(assigner.request("cpu", 10)) == [0]
    released = assigner.request("gpu", 10)
    assert routes(released) == {
        1: {"s": ["gpu"]},
        2: {"s": ["cpu"]},
        3: {"s": ["gpu"]},
        4: {"s": ["cpu", "gpu"]},
    }


def test_event_is_released_only_when_all_its_constraints_are_bound():
    tm = TriggerMap.from_mapping({"eiger": [[vw(0, ["gpu"])]], "orca": [[vw(1)]]})
    assigner = Assigner(tm, {"cpu": ["generic"], "gpu": ["gpu"]})
    assert numbers(assigner.request("cpu", 1)) == [0]
    assert assigner.assignments_for_event(1) is None
    released = assigner.request("gpu", 1)
    assert routes(released)[1] == {"eiger": ["gpu"], "orca": ["cpu"]}


def test_map_whose_tags_no_worker_has_is_refused_naming_stream_event_and_tags():
    tm = TriggerMap.from_mapping({"eiger": [[vw(0)], [vw(1)]], "orca": [None, [vw(2, ["gpu"])]]})
    with pytest.raises(TriggerMapError) as info:
        Assigner(tm, {"a": ["generic"], "b": ["generic"]})
    assert str(info.value) == (
        "stream 'orca', event 2 (part 'main', event 1): no registered worker has all the tags "
        "['gpu']; registered: 'a' ['generic'], 'b' ['generic']"
    )


def test_default_tags_need_a_generic_worker():
    tm = TriggerMap.from_mapping({"s": [[{"constraint": 0}]]})
    with pytest.raises(TriggerMapError) as info:
        tm.validate_against({"x": ["gpu"]})
    assert str(info.value) == (
        "stream 's', event 1 (part 'main', event 0): no registered worker has all the tags "
        "['generic']; registered: 'x' ['gpu']"
    )


# --- sequences and reserved events ---------------------------------------------------------------


def test_reserved_first_and_last_events_broadcast_to_all_workers_on_every_stream():
    tm = TriggerMap.from_mapping({"eiger": [[vw(0)], None], "orca": [None, []]})
    everyone = [VirtualWorker(tags=set(), constraint=None)]
    assert len(tm) == 4
    assert tm.last_event == 3
    for stream in ("eiger", "orca"):
        assert tm.entry(stream, 0) == everyone
        assert tm.entry(stream, 3) == everyone
    released = Assigner(tm, {"a": ["generic"], "g": ["gpu"]}).request("a", 10)
    assert routes(released)[0] == routes(released)[3] == {"eiger": ["a", "g"], "orca": ["a", "g"]}


def test_sequence_concatenates_parts_in_order():
    request = SequenceRequest(
        parts={"dark": {"s": [[vw(0)]]}, "light": {"s": [None, []]}},
        sequence=["light", "dark", "light"],
    )
    tm = TriggerMap(request)
    assert len(tm) == 7
    assert [tm.entry("s", e) for e in range(1, 6)] == [
        None,
        [],
        [VirtualWorker(constraint=0)],
        None,
        [],
    ]


def test_repeated_part_gets_fresh_constraint_ids():
    request = SequenceRequest(
        parts={"a": {"s": [[vw(7)]]}, "b": {"s": [[vw(2)]]}}, sequence=["a", "b", "a"]
    )
    tm = TriggerMap(request)
    # bases: 0, then 7 + 1 = 8, then 8 + 2 + 1 = 11
    assert [tm.entry("s", e)[0].constraint for e in (1, 2, 3)] == [7, 10, 18]


def test_repeated_part_binds_each_occurrence_afresh():
    tm = TriggerMap(SequenceRequest(parts={"p": {"s": [[vw(0)], [vw(0)]]}}, sequence=["p", "p"]))
    assigner = Assigner(tm, GENERIC2)
    assert routes(assigner.request("a", 1)) == {
        0: {"s": ["a", "b"]},
        1: {"s": ["a"]},
        2: {"s": ["a"]},
    }
    assert routes(assigner.request("b", 1)) == {
        3: {"s": ["b"]},
        4: {"s": ["b"]},
        5: {"s": ["a", "b"]},
    }


def test_simple_map_gives_every_event_its_own_constraint_on_all_streams():
    tm = TriggerMap.simple(["a", "b"], 3000)
    assert len(tm) == 3002
    assert tm.entry("a", 1) == tm.entry("b", 1) == [VirtualWorker(constraint=0)]
    assert tm.entry("a", 1025) == [VirtualWorker(constraint=1024)]
    assert tm.entry("b", 3000) == [VirtualWorker(constraint=2999)]


def test_events_for_lists_the_events_in_which_a_stream_has_a_frame():
    request = SequenceRequest(parts={"p": {"orca": [[vw(0)], None, []]}}, sequence=["p", "p"])
    tm = TriggerMap(request)
    assert list(tm.events_for("orca")) == [0, 1, 3, 4, 6, 7]
    assert list(tm.events_for("orca", start=2, stop=5)) == [3, 4]


def test_unknown_stream_and_event_outside_the_map_are_lookup_errors():
    tm = TriggerMap.simple(["s"], 2)
    with pytest.raises(KeyError, match="unknown stream 'x'"):
        tm.entry("x", 1)
    with pytest.raises(IndexError, match=r"event 4 is outside the map \(events 0..3\)"):
        tm.entry("s", 4)


# --- lazy expansion ------------------------------------------------------------------------------


def ten_million_event_request():
    # 100 events, event i with constraint i, repeated 100,000 times
    part = {"s": [[vw(i)] for i in range(100)]}
    return {"parts": {"p": part}, "sequence": ["p"] * 100_000}


def test_ten_million_events_are_built_and_queried_quickly():
    started = time.perf_counter()
    tm = TriggerMap(SequenceRequest(**ten_million_event_request()))
    assert len(tm) == 10_000_002
    # event 9,999,999 is part event 98 of occurrence 99,999: 99,999 * 100 + 98
    assert tm.entry("s", 9_999_999) == [VirtualWorker(constraint=9_999_998)]
    assert list(tm.events_for("s", start=9_999_999)) == [9_999_999, 10_000_000, 10_000_001]
    # a generous bound: building ten million entries one by one would take far longer;
    # bench/ measures the speed
    assert time.perf_counter() - started < 10.0


def test_ten_million_events_take_memory_of_the_parts_not_of_the_events():
    raw = ten_million_event_request()
    tracemalloc.start()
    try:
        tm = TriggerMap(SequenceRequest(**raw))
        tm.entry("s", 9_999_999)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # one byte per event would already be 10 MB
    assert peak < 8_000_000


# --- batching and dynamic assignment -------------------------------------------------------------


def test_request_hands_out_at_most_max_events():
    assigner = Assigner(TriggerMap.simple(["s"], 10), GENERIC2)
    # event 0 is the start broadcast and needs no request
    assert numbers(assigner.request("a", 3)) == [0, 1, 2, 3]
    assert numbers(assigner.request("b", 3)) == [4, 5, 6]


def test_worker_that_asks_more_often_gets_more_events():
    assigner = Assigner(TriggerMap.simple(["s"], 10), GENERIC2)
    calls = ["a", "a", "b", "a", "a"]
    taken = {"a": [], "b": []}
    for worker in calls:
        for assignment in assigner.request(worker, 2):
            if assignment.event_number not in (0, 11):
                taken[assignment.streams["s"][0]].append(assignment.event_number)
    assert taken == {"a": [1, 2, 3, 4, 7, 8, 9, 10], "b": [5, 6]}


def test_events_are_released_in_increasing_order_without_gaps():
    assigner = Assigner(TriggerMap.simple(["s"], 50), GENERIC2)
    released = drain(assigner, ["a", "b"], batch=7)
    assert numbers(released) == list(range(52))


def test_done_once_every_event_is_released():
    assigner = Assigner(TriggerMap.simple(["s"], 2), GENERIC2)
    assert not assigner.done()
    assigner.request("a", 5)
    assert assigner.done()
    assert assigner.request("b", 5) == []


def test_assignments_for_event_is_none_until_bound_then_the_assignment():
    assigner = Assigner(TriggerMap.simple(["s"], 3), GENERIC2)
    assert assigner.assignments_for_event(2) is None
    assigner.request("b", 2)
    assert assigner.assignments_for_event(2) == Assignment(event_number=2, streams={"s": ["b"]})


def test_request_from_unknown_worker_is_refused():
    assigner = Assigner(TriggerMap.simple(["s"], 3), GENERIC2)
    with pytest.raises(AssignmentError, match="unknown worker 'z'"):
        assigner.request("z", 1)


def test_request_needs_a_positive_batch():
    assigner = Assigner(TriggerMap.simple(["s"], 3), GENERIC2)
    with pytest.raises(AssignmentError, match="max_events must be a positive integer, got 0"):
        assigner.request("a", 0)


# --- completion and dead workers -----------------------------------------------------------------


def test_forget_worker_returns_exactly_its_uncompleted_events():
    assigner = Assigner(TriggerMap.simple(["s"], 6), GENERIC2)
    assigner.request("a", 2)  # 0 (broadcast to a and b), 1, 2
    assigner.request("b", 2)  # 3, 4
    assigner.request("a", 1)  # 5
    assigner.complete(1, "a")
    assigner.complete(5, "a")
    assert assigner.forget_worker("a") == [0, 2]


def test_forgotten_workers_unreleased_constraints_go_to_another_worker():
    gpu = ["gpu"]
    tm = TriggerMap.from_mapping(
        {"eiger": [[vw(0, gpu)], [vw(2, gpu)]], "orca": [[vw(1)], [vw(3)]]}
    )
    assigner = Assigner(tm, {"a": ["generic"], "b": ["generic"], "g": gpu})
    assigner.request("a", 2)  # a binds orca of events 1 and 2; both wait for the gpu worker
    assert assigner.forget_worker("a") == [0]  # only the start broadcast had reached it
    assigner.request("b", 2)
    released = assigner.request("g", 2)
    assert routes(released) == {
        1: {"eiger": ["g"], "orca": ["b"]},
        2: {"eiger": ["g"], "orca": ["b"]},
        3: {"eiger": ["b", "g"], "orca": ["b", "g"]},
    }


def test_reassigning_a_dead_workers_events_hands_them_to_a_live_worker():
    assigner = Assigner(TriggerMap.simple(["s"], 6), GENERIC2)
    assigner.request("a", 2)  # 0 (broadcast to a and b), 1, 2
    assigner.request("b", 2)  # 3, 4
    assigner.complete(1, "a")
    lost, moved = assigner.reassign_worker("a")
    assert lost == []
    # event 0 was a broadcast b received itself: nothing to re-deliver; event 2 moves to b
    assert routes(moved) == {2: {"s": ["b"]}}
    assert "a" not in assigner.workers
    assigner.complete(2, "b")  # b now owes event 2: its completion is accepted once
    with pytest.raises(AssignmentError):
        assigner.complete(2, "b")


def test_reassignment_needs_a_worker_with_all_the_dead_workers_tags():
    tm = TriggerMap.from_mapping({"s": [[vw(0, ["gpu"])], [vw(1)]]})
    assigner = Assigner(tm, {"g": ["gpu", "generic"], "c": ["generic"]})
    assigner.request("g", 1)  # g takes the gpu event 1
    lost, moved = assigner.reassign_worker("g")
    assert lost == [0, 1] and moved == []  # c lacks "gpu": nobody can take g's events


def test_reassignment_spreads_over_the_least_loaded_workers():
    assigner = Assigner(
        TriggerMap.simple(["s"], 8), {"a": ["generic"], "b": ["generic"], "c": ["generic"]}
    )
    assigner.request("a", 4)  # 0 (broadcast), 1..4
    assigner.complete(0, "b")
    assigner.complete(0, "c")
    lost, moved = assigner.reassign_worker("a")
    owners = [a.streams["s"][0] for a in moved if a.event_number != 0]
    assert lost == [] and sorted(owners) == ["b", "b", "c", "c"]


def test_completing_an_event_twice_is_refused():
    assigner = Assigner(TriggerMap.simple(["s"], 3), GENERIC2)
    assigner.request("a", 1)
    assigner.complete(1, "a")
    with pytest.raises(AssignmentError, match="worker 'a' has no outstanding event 1"):
        assigner.complete(1, "a")


# --- invalid maps --------------------------------------------------------------------------------


# INVALID (tests/support/triggermaps.py) is shared with tests/test_rest_refusals.py, which posts
# every one of these maps to the controller and expects the same message.


@pytest.mark.parametrize("raw, message", INVALID.values(), ids=INVALID.keys())
def test_invalid_map_is_refused_naming_the_place(raw, message):
    with pytest.raises(TriggerMapError) as info:
        SequenceRequest.model_validate(raw)
    assert str(info.value) == message


def test_request_json_that_is_not_json_is_refused():
    with pytest.raises(TriggerMapError) as info:
        TriggerMap.from_request_json(b'{"parts": ')
    assert str(info.value) == "trigger map is not valid JSON: Expecting value at line 1 column 11"


def test_request_json_that_is_not_an_object_is_refused():
    with pytest.raises(TriggerMapError) as info:
        TriggerMap.from_request_json(b"[1, 2]")
    assert str(info.value) == (
        "trigger map must be a JSON object with 'parts' and 'sequence', got a JSON array"
    )


def test_request_json_errors_name_the_place():
    body = json.dumps(one_part({"eiger": [None, None, None, [vw(-1)]]})).encode()
    with pytest.raises(TriggerMapError) as info:
        TriggerMap.from_request_json(body)
    assert str(info.value) == (
        "part 'main', stream 'eiger', event 3: constraint must be a non-negative integer, got -1"
    )


def test_trigger_map_error_is_a_value_error():
    assert issubclass(TriggerMapError, ValueError)


# --- property: whatever the map and the order of requests, every frame lands where it may

TAGS = ["generic", "gpu", "fast"]
tag_sets = st.frozensets(st.sampled_from(TAGS), max_size=2)


@st.composite
def scenarios(draw):
    names = st.sampled_from(["eiger", "orca", "pilatus"])
    streams = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    parts = {}
    for name in ["p0", "p1", "p2"][: draw(st.integers(1, 3))]:
        length = draw(st.integers(1, 4))
        constraint_tags = [draw(tag_sets) for _ in range(4)]
        mapping = {}
        for stream in streams:
            entries = []
            for _ in range(length):
                kind = draw(st.sampled_from(["null", "discard", "constraint", "broadcast"]))
                if kind == "null":
                    entries.append(None)
                elif kind == "discard":
                    entries.append([])
                elif kind == "constraint":
                    c = draw(st.integers(0, 3))
                    entries.append([vw(c, sorted(constraint_tags[c]))])
                else:
                    wanted = draw(st.sets(tag_sets, min_size=1, max_size=2))
                    entries.append([vw(None, sorted(tags)) for tags in wanted])
            mapping[stream] = entries
        parts[name] = mapping
    sequence = draw(st.lists(st.sampled_from(sorted(parts)), min_size=1, max_size=5))
    # w0 has every tag, so every map is servable; the others have whatever they drew
    workers = {"w0": set(TAGS)}
    for i in range(1, draw(st.integers(1, 3)) + 1):
        workers[f"w{i}"] = set(draw(st.sets(st.sampled_from(TAGS), max_size=3)))
    ask = st.tuples(st.sampled_from(sorted(workers)), st.integers(1, 3))
    asks = draw(st.lists(ask, max_size=20))
    lookahead = draw(st.sampled_from([1, 2, 10_000]))  # small windows exercise the full-window path
    return {"parts": parts, "sequence": sequence}, workers, asks, lookahead


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_every_frame_reaches_workers_with_its_tags_and_each_constraint_one_worker(scenario):
    raw, workers, asks, lookahead = scenario
    tm = TriggerMap(SequenceRequest.model_validate(raw))
    assigner = Assigner(tm, workers, lookahead=lookahead)
    released = []
    for worker, batch in asks:
        released.extend(assigner.request(worker, batch))
    released.extend(drain(assigner, sorted(workers), batch=2))

    # every event exactly once, in order
    assert numbers(released) == list(range(len(tm)))

    bound = {}
    for assignment in released:
        event = assignment.event_number
        for stream in tm.streams:
            entry = tm.entry(stream, event)
            if entry is None:
                assert stream not in assignment.streams
                continue
            got = assignment.streams[stream]
            constrained = [v for v in entry if v.constraint is not None]
            if constrained:  # the generator never mixes a constraint with broadcasts
                (virtual,) = constrained
                (real,) = got
                assert virtual.tags <= workers[real]
                assert bound.setdefault(virtual.constraint, real) == real
            else:
                expected = sorted(
                    w for w, have in workers.items() if any(v.tags <= have for v in entry)
                )
                assert got == expected

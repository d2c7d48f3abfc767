"""Offline replay: event routing, ordering, failures, timer/tick, sources and merging."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dranspose.core.event import InternalWorkerMessage, StreamData
from dranspose.core.parameters import IntParameter
from dranspose.io.capture import write_capture
from dranspose.tools.replay import replay, run_replay
from tests.conftest import XRD_CAPTURE, raw_xrd_events


def message(
    number: int, stream: str = "s", frames: list[bytes] | None = None
) -> InternalWorkerMessage:
    return InternalWorkerMessage(
        event_number=number,
        streams={stream: StreamData(typ="test", frames=frames or [str(number).encode()])},
    )


class Collector:
    """A reducer that keeps every result it gets, in arrival order."""

    instances: list[Collector] = []

    def __init__(self, *args, **kwargs):
        self.results = []
        self.finished = 0
        Collector.instances.append(self)

    def process_result(self, result, parameters=None):
        self.results.append(result)

    def finish(self, parameters=None):
        self.finished += 1


@pytest.fixture(autouse=True)
def _reset_collectors():
    Collector.instances.clear()
    yield
    Collector.instances.clear()


def last_collector() -> Collector:
    return Collector.instances[-1]


class WhoWorker:
    def __init__(self, state=None):
        self.name = state.name

    def process_event(self, event):
        return (self.name, event.event_number, sorted(event.streams))


def test_first_event_is_broadcast_to_every_worker(tmp_path):
    path = tmp_path / "c.cbors"
    write_capture(path, [message(i) for i in range(7)])
    summary = run_replay(WhoWorker, Collector, [path], nworkers=3)
    payloads = [r.payload for r in last_collector().results]
    first = [p for p in payloads if p[1] == 0]
    assert sorted(p[0] for p in first) == ["development0", "development1", "development2"]
    rest = [p[1] for p in payloads if p[1] != 0]
    assert rest == [1, 2, 3, 4, 5, 6]
    assert {p[0] for p in payloads if p[1] != 0} == {"development0", "development1", "development2"}
    assert summary.events == 7 and summary.results == 9 and summary.ok


def test_without_broadcast_every_event_goes_to_one_worker(tmp_path):
    path = tmp_path / "c.cbors"
    write_capture(path, [message(i) for i in range(4)])
    run_replay(WhoWorker, Collector, [path], nworkers=3, broadcast_first=False)
    assert [r.payload[1] for r in last_collector().results] == [0, 1, 2, 3]


def test_results_reach_the_reducer_in_event_order_with_provenance(tmp_path):
    path = tmp_path / "c.cbors"
    write_capture(path, [message(i) for i in range(20)])
    run_replay(WhoWorker, Collector, [path], nworkers=2, broadcast_first=False)
    results = last_collector().results
    assert [r.event_number for r in results] == list(range(20))
    assert all(len(r.parameters_hash) == 64 for r in results)
    assert [r.worker for r in results[:4]] == ["development0", "development1"] * 2


def test_two_capture_files_merge_into_full_events(tmp_path):
    a, b = tmp_path / "a.cbors", tmp_path / "b.cbors"
    write_capture(a, [message(i, "fast") for i in range(6)])
    # the slow stream skips events 1 and 4
    write_capture(b, [message(i, "slow") for i in (0, 2, 3, 5)])
    run_replay(WhoWorker, Collector, [a, b], nworkers=1)
    streams = {r.payload[1]: r.payload[2] for r in last_collector().results}
    assert streams == {
        0: ["fast", "slow"],
        1: ["fast"],
        2: ["fast", "slow"],
        3: ["fast", "slow"],
        4: ["fast"],
        5: ["fast", "slow"],
    }


def test_the_same_stream_twice_with_one_event_number_replays_both(tmp_path, caplog):
    """As the original dranspose's replay: a stream repeated under one event number (sources
    yielding two messages for it) is replayed as two events, with a warning, none lost."""
    a, b = tmp_path / "a.cbors", tmp_path / "b.cbors"
    write_capture(a, [message(i, "x") for i in range(3)])
    write_capture(b, [message(1, "x")])
    summary = run_replay(WhoWorker, Collector, [a, b], nworkers=1)
    assert summary.failures == [] and summary.events == 4
    assert [r.event_number for r in last_collector().results] == [0, 1, 1, 2]
    assert "event 1: stream(s) x arrived again with the same event number" in caplog.text


class FailingWorker:
    def process_event(self, event, parameters=None):
        if event.event_number == 3:
            raise ZeroDivisionError("bad pixel")
        return event.event_number


@pytest.mark.expect_errors
def test_payload_exception_is_reported_and_replay_goes_on(tmp_path, caplog):
    path = tmp_path / "c.cbors"
    write_capture(path, [message(i) for i in range(6)])
    summary = run_replay(FailingWorker, Collector, [path], nworkers=1)
    assert [r.payload for r in last_collector().results] == [0, 1, 2, 4, 5]
    assert len(summary.failures) == 1
    failure = summary.failures[0]
    assert failure.event_number == 3 and failure.stage == "process_event"
    assert "ZeroDivisionError: bad pixel" in failure.message
    assert "Traceback" in caplog.text and "event 3" in caplog.text
    assert last_collector().finished == 1


class UnpicklableWorker:
    def process_event(self, event):
        return lambda: event.event_number


@pytest.mark.expect_errors
def test_unpicklable_result_fails_with_event_number(tmp_path):
    path = tmp_path / "c.cbors"
    write_capture(path, [message(i) for i in range(3)])
    summary = run_replay(UnpicklableWorker, Collector, [path], nworkers=1)
    assert [f.event_number for f in summary.failures] == [0, 1, 2]
    assert all(f.stage == "result pickling" for f in summary.failures)
    assert last_collector().results == []


class KeywordOnlyWorker:
    """The tutorial's final signature: parameters must arrive as a keyword."""

    def __init__(self, *args, **kwargs):
        pass

    @staticmethod
    def describe_parameters():
        return [IntParameter(name="scale", default=3)]

    def process_event(self, event, *args, parameters=None, **kwargs):
        return (parameters["scale"].value, sorted(kwargs))


class MinimalReducer:
    instances = []

    def __init__(self):
        self.got = []
        MinimalReducer.instances.append(self)

    def process_result(self, result):
        self.got.append(result.payload)


def test_methods_get_arguments_as_their_signatures_accept(tmp_path):
    path = tmp_path / "c.cbors"
    write_capture(path, [message(i) for i in range(2)])
    summary = run_replay(KeywordOnlyWorker, MinimalReducer, [path], nworkers=1)
    assert summary.ok
    assert MinimalReducer.instances[-1].got == [(3, ["tick"]), (3, ["tick"])]


class SlowTickWorker:
    def get_tick_interval(self, parameters):
        return 0.05

    def process_event(self, event, parameters, tick):
        time.sleep(0.02)
        return tick


class TimerReducer:
    instances = []

    def __init__(self):
        self.ticks = []
        self.timer_calls = []
        TimerReducer.instances.append(self)

    def process_result(self, result, parameters=None):
        self.ticks.append(result.payload)

    def timer(self):
        self.timer_calls.append(time.monotonic())
        return 0.03


def test_timer_and_tick_follow_their_intervals(tmp_path):
    path = tmp_path / "c.cbors"
    write_capture(path, [message(i) for i in range(30)])
    started = time.monotonic()
    run_replay(SlowTickWorker, TimerReducer, [path], nworkers=1, broadcast_first=False)
    elapsed = time.monotonic() - started
    reducer = TimerReducer.instances[-1]
    ticks = sum(reducer.ticks)
    # 30 events x 20 ms = 0.6 s: ticks every 50 ms, timer every 30 ms (granularity: one event)
    assert 0 < ticks <= elapsed / 0.05 + 1
    assert ticks >= elapsed / 0.1 - 2
    gaps = np.diff(reducer.timer_calls)
    assert len(reducer.timer_calls) >= elapsed / 0.06
    assert np.all(gaps >= 0.03 - 1e-3)


class ListSource:
    def get_source_generators(self):
        return [iter([message(i, "gen") for i in range(5)])]


def test_source_class_feeds_events(tmp_path):
    summary = run_replay(WhoWorker, Collector, source=ListSource, nworkers=1)
    assert summary.events == 5
    assert [r.payload[1] for r in last_collector().results] == [0, 1, 2, 3, 4]


@pytest.mark.expect_errors
def test_truncated_capture_processes_what_precedes_and_finishes(tmp_path):
    path = tmp_path / "c.cbors"
    write_capture(path, [message(i, frames=[b"x" * 100]) for i in range(5)])
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) - 50])
    summary = run_replay(WhoWorker, Collector, [path], nworkers=1)
    assert [r.payload[1] for r in last_collector().results] == [0, 1, 2, 3]
    assert last_collector().finished == 1
    assert summary.failures[-1].stage == "read"
    assert "c.cbors" in summary.failures[-1].message and "item 4" in summary.failures[-1].message


def test_replay_keywords_and_events_work_from_a_thread(tmp_path):
    done, start = threading.Event(), threading.Event()
    before = len(Collector.instances)
    thread = threading.Thread(
        target=replay,
        args=(WhoWorker, Collector, [XRD_CAPTURE], None, None),
        kwargs={"done_event": done, "start_event": start, "nworkers": 2},
    )
    thread.start()
    # the payloads exist before the gate opens; no event is processed until it does
    deadline = time.monotonic() + 10
    while len(Collector.instances) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(Collector.instances) == before + 1
    time.sleep(0.2)
    assert not done.is_set() and last_collector().results == []
    start.set()
    assert done.wait(30)
    thread.join(10)
    numbers = [r.payload[1] for r in last_collector().results]
    assert numbers == [0, 0] + [n for n, _ in raw_xrd_events()][1:]


def test_stop_event_ends_replay_early(tmp_path):
    stop = threading.Event()

    class StoppingWorker:
        def process_event(self, event):
            if event.event_number == 2:
                stop.set()
            return event.event_number

    path = tmp_path / "c.cbors"
    write_capture(path, [message(i) for i in range(10)])
    summary = run_replay(StoppingWorker, Collector, [path], nworkers=1, stop_event=stop)
    assert summary.stopped_early
    assert [r.payload for r in last_collector().results] == [0, 1, 2]
    assert last_collector().finished == 1

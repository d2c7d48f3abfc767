"""A successor controller's account, rebuilt from what its predecessor published (pure).

The predecessor here is a real :class:`ScanAccount` driven like the controller's scan loop; what
it publishes and what the workers report is folded into a :class:`Ledger` exactly as the store
holds it. The rebuilt account must say what the predecessor's said (worked out by hand for a
small map, by the uninterrupted account for random scans) and continue the scan the same way.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from dranspose.core.coordination import (
    AssignedRun,
    FailedEvent,
    ScanInfo,
    WorkerReport,
    runs_of,
)
from dranspose.core.protocol import EventNumber, WorkerName
from dranspose.core.scan_account import ScanAccount
from dranspose.core.scan_resume import (
    Ledger,
    ResumeError,
    merged,
    parse_record,
    ranges_of,
    record_of,
    resume,
    subtract,
)
from dranspose.core.triggermap import TriggerMap

W0, W1, W2 = WorkerName("w0"), WorkerName("w1"), WorkerName("w2")


class Predecessor:
    """A live account and the ledger a successor would read: every request, answer, completion
    and death goes through both, in the order the streams would hold them."""

    def __init__(
        self, trigger_map: TriggerMap, workers: dict[WorkerName, set[str]], retry_lost: bool = False
    ) -> None:
        self.scan = ScanInfo(
            scan_id="s1",
            streams=list(trigger_map.streams),
            workers=sorted(workers),
            n_events=len(trigger_map),
            retry_lost=retry_lost,
        )
        ingesters = {"ing": list(trigger_map.streams)}
        self.record = record_of(self.scan, trigger_map.request, workers, ingesters)
        self.run = ScanAccount(self.scan, trigger_map, trigger_map.request, workers, ingesters)
        self.ledger = Ledger()
        self.clock = 0
        self.held: dict[WorkerName, list[int]] = {w: [] for w in workers}

    def next_id(self) -> str:
        self.clock += 1
        return f"{self.clock}-0"

    def note(self, runs: list[AssignedRun], answered: list[str]) -> None:
        self.ledger.assignments(self.next_id(), runs, answered)
        for run in runs:
            for worker in {w for names in run.streams.values() for w in names}:
                self.held.setdefault(worker, []).extend(run.events())

    def ask(self, worker: WorkerName, want: int, answer: bool = True) -> list[AssignedRun]:
        self.ledger.report(self.next_id(), WorkerReport(worker=worker, want=want))
        if not answer:  # the controller died before it answered
            return []
        assert self.run.assigner is not None
        runs = self.run.released_runs(self.run.assigner.request_runs(worker, want))
        if runs:
            self.note(runs, [worker])
        return runs

    def complete(self, worker: WorkerName, events: list[int]) -> None:
        self.run.completed_all(worker, events)
        self.ledger.report(self.next_id(), WorkerReport(worker=worker, completed=events))
        for event in events:
            self.held[worker].remove(event)

    def fail(self, worker: WorkerName, event: int) -> None:
        failure = FailedEvent(event_number=EventNumber(event), worker=worker, reason="boom")
        self.run.failed(failure)
        self.ledger.report(self.next_id(), WorkerReport(worker=worker, failed=[failure]))
        self.held[worker].remove(event)

    def die(self, worker: WorkerName) -> None:
        moved = self.run.lost(worker, f"worker {worker} died")
        if moved:
            self.note(runs_of(moved), [])
        del self.held[worker]

    def successor(self) -> ScanAccount:
        previous = self.run.progress.model_copy(deep=True)
        return resume(self.scan.model_copy(deep=True), self.record, self.ledger, previous, 1.0)


def _chain(stream_events: int, length: int) -> TriggerMap:
    """One stream; constraint ``k`` takes events ``k * length + 1 ..`` (``length`` each)."""
    entries = [[{"tags": ["generic"], "constraint": i // length}] for i in range(stream_events)]
    return TriggerMap.from_mapping({"s": entries})


def test_a_small_scan_rebuilt_by_hand():
    # events 1-3: constraint 0, 4-6: constraint 1; event 0 and 7 go to both workers
    p = Predecessor(_chain(6, 3), {W0: {"generic"}, W1: {"generic"}})
    p.note([AssignedRun(0, 1, {"s": [W0, W1]}), AssignedRun(1, 2, {"s": [W0]})], [W0])
    p.ledger.report("5-0", WorkerReport(worker=W0, completed=[0, 1]))
    p.ledger.report("6-0", WorkerReport(worker=W1, completed=[0], want=5))
    run = resume(p.scan, p.record, p.ledger, None, 1.0)
    assert run.assigner is not None
    assert run.assigner.next_event == 3
    assert run.assigner.bindings == {0: W0}  # constraint 0 spans the release point
    assert list(run.accounted.spans()) == [(0, 1)]
    assert run.progress.completed == 2 and run.progress.lost == []
    assert run.assigner.waiting_for(2) == {W0}
    assert (run.progress.resumed, run.progress.resumed_at) == (1, 1.0)
    assert run.open_requests == {W1: 5}  # asked after the last batch that answered it
    assert run.reports_from == "6-0" and run.totals == {W0: 2, W1: 1}
    # continuing: event 3 still goes to w0, the next constraint to the asker
    runs = run.assigner.request_runs(W1, 5)
    assert runs == [
        AssignedRun(3, 1, {"s": [W0]}),
        AssignedRun(4, 3, {"s": [W1]}),
        AssignedRun(7, 1, {"s": [W0, W1]}),
    ]


def test_requests_answered_or_not():
    ledger = Ledger()
    ledger.report("10-0", WorkerReport(worker=W0, want=4))
    ledger.report("11-0", WorkerReport(worker=W1, want=4))
    # answers both; w1 asked in the same millisecond: answered (a tie is never answered twice)
    ledger.assignments("11-1", [AssignedRun(0, 2, {"s": [W0, W1]})], [W0, W1])
    ledger.report("12-0", WorkerReport(worker=W2, want=8))  # nobody answered it
    ledger.report("13-0", WorkerReport(worker=W0, want=3))  # asked again after its answer
    assert ledger.open_requests([W0, W1, W2]) == {W0: 3, W2: 8}


def _drive(p: Predecessor, rng: random.Random, steps: int, deaths: bool) -> None:
    for _ in range(steps):
        worker = rng.choice(sorted(p.held))
        roll = rng.random()
        if roll < 0.45:
            p.ask(worker, rng.randint(1, 12))
        elif roll < 0.9 and p.held[worker]:
            owed = sorted(p.held[worker])
            done = owed[: rng.randint(1, len(owed))]
            if rng.random() < 0.3:  # out of order, and a report sent twice
                rng.shuffle(done)
                p.ledger.report(p.next_id(), WorkerReport(worker=worker, completed=done[:1]))
            p.complete(worker, done)
        elif roll < 0.93 and p.held[worker]:
            p.fail(worker, rng.choice(p.held[worker]))
        elif deaths and roll > 0.98 and len(p.held) > 2:
            p.die(worker)


def _same_account(a: ScanAccount, b: ScanAccount) -> None:
    assert a.assigner is not None and b.assigner is not None
    assert a.assigner.next_event == b.assigner.next_event
    assert list(a.accounted.spans()) == list(b.accounted.spans())
    pa, pb = a.progress, b.progress
    assert (pa.completed, pa.lost_reason, pa.redelivered) == (
        pb.completed,
        pb.lost_reason,
        pb.redelivered,
    )
    assert sorted(pa.lost) == sorted(pb.lost)
    key = lambda f: (f.event_number, f.worker)  # noqa: E731
    assert sorted(pa.failed, key=key) == sorted(pb.failed, key=key)
    assert sorted(a.assigner.workers) == sorted(b.assigner.workers)
    for event in range(a.assigner.next_event):
        assert a.assigner.waiting_for(event) == b.assigner.waiting_for(event), event


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["simple", "chain", "two-streams", "retry-lost"])
def test_a_random_scan_continues_as_if_nothing_happened(kind: str, seed: int) -> None:
    rng = random.Random(seed)
    if kind in ("simple", "retry-lost"):
        trigger_map = TriggerMap.simple(["a", "b"], 300)
    elif kind == "chain":
        trigger_map = _chain(300, rng.randint(2, 7))
    else:  # a: a constraint per three events; b: every other event, a constraint of its own,
        # so a request can stop in the middle of a's constraint (it spans the release point)
        # and an event's two frames can go to two workers
        a = [[{"tags": ["generic"], "constraint": i // 3}] for i in range(200)]
        b: list[Any] = [
            None if i % 2 else [{"tags": ["generic"], "constraint": 1000 + i}] for i in range(200)
        ]
        b[8] = []  # read and dropped
        trigger_map = TriggerMap.from_mapping({"a": a, "b": b})
    workers = {W0: {"generic"}, W1: {"generic"}, W2: {"generic"}}
    p = Predecessor(trigger_map, workers, retry_lost=kind == "retry-lost")
    # with --retry-lost a dead worker's events move to a survivor: re-delivery runs
    _drive(p, rng, rng.randint(5, 120), deaths=seed % 2 == 1)
    if kind == "retry-lost":
        doomed = sorted(p.held)[0]
        p.ask(doomed, 8)
        p.die(doomed)
        _drive(p, rng, 30, deaths=False)
    live, successor = p.run, p.successor()
    _same_account(live, successor)
    # both go on with the same requests and completions: the same runs, the same end
    held = {w: list(events) for w, events in p.held.items()}
    for step in range(400):
        worker = sorted(held)[step % len(held)]
        assert live.assigner is not None and successor.assigner is not None
        got = live.released_runs(live.assigner.request_runs(worker, 9))
        again = successor.released_runs(successor.assigner.request_runs(worker, 9))
        assert got == again
        for run in got:
            for w in {w for names in run.streams.values() for w in names}:
                held[w].extend(run.events())
        done, held[worker] = held[worker], []
        live.completed_all(worker, done)
        successor.completed_all(worker, done)
        if live.all_accounted:
            break
    assert live.all_accounted and successor.all_accounted
    _same_account(live, successor)
    assert successor.progress.completed == live.progress.completed


def test_a_worker_dropped_before_the_takeover_owes_nothing():
    p = Predecessor(TriggerMap.simple(["s"], 20), {W0: {"generic"}, W1: {"generic"}})
    p.ask(W0, 4)
    p.ask(W1, 4)
    p.complete(W0, [0, 1])
    p.die(W1)  # its share of event 0 (w0 did its own) and its events 5..8 are lost
    run = p.successor()
    assert sorted(run.progress.lost) == [0, 5, 6, 7, 8]
    assert set(run.progress.lost_reason.values()) == {"worker w1 died"}
    assert run.assigner is not None and run.assigner.workers.keys() == {W0}
    assert run.progress.completed == 1  # event 1
    # without the predecessor's snapshot, what w1 alone owed is still lost; its share of event
    # 0, which w0 also got and did, settles with w0's (as when w0 reports it after the death)
    blind = resume(p.scan, p.record, p.ledger, None, 2.0)
    assert sorted(blind.progress.lost) == [5, 6, 7, 8]
    assert blind.progress.completed == 2


def test_with_retry_lost_what_a_dead_worker_owed_stays_with_its_replacement():
    p = Predecessor(TriggerMap.simple(["s"], 20), {W0: {"generic"}, W1: {"generic"}}, True)
    p.ask(W0, 4)
    p.ask(W1, 4)
    p.complete(W1, [0, 5])
    p.die(W1)  # 6..8 go to w0 again (re-delivery runs); w0 got its own frame of event 0
    run = p.successor()
    assert run.progress.redelivered == [6, 7, 8] and run.progress.lost == []
    assert run.assigner is not None
    assert [run.assigner.waiting_for(e) for e in range(10)] == [
        {W0},
        *[{W0}] * 4,
        set(),
        {W0},
        {W0},
        {W0},
        set(),
    ]
    run.completed_all(W0, [0, 1, 2, 3, 4, 6, 7, 8])
    assert run.progress.completed == 9 and list(run.accounted.spans()) == [(0, 8)]


def test_what_cannot_be_resumed_says_why():
    p = Predecessor(TriggerMap.simple(["s"], 5), {W0: {"generic"}})
    with pytest.raises(ResumeError, match="no account record"):
        parse_record(None)
    newer = p.record.model_copy(update={"version": 2}).model_dump_json().encode()
    with pytest.raises(ResumeError, match="version 2; this controller reads version 1"):
        parse_record(newer)
    with pytest.raises(ResumeError, match="incomplete"):
        parse_record(b'{"version": 1, "scan_id": "s1"}')
    assert parse_record(p.record.model_dump_json().encode()) == p.record
    gap = Ledger()
    gap.assignments("1-0", [AssignedRun(3, 1, {"s": [W0]})], [])
    with pytest.raises(ResumeError, match="event 0 is missing"):
        resume(p.scan, p.record, gap, None)
    other = p.scan.model_copy(update={"scan_id": "s2"})
    with pytest.raises(ResumeError, match="belongs to scan s1"):
        resume(other, p.record, Ledger(), None)


def test_range_helpers():
    assert ranges_of([4, 5, 6]) == [(4, 7)]
    assert ranges_of([9, 3, 4, 4, 8]) == [(3, 5), (8, 10)]
    assert merged([(5, 7), (0, 2), (2, 3), (6, 9)]) == [(0, 3), (5, 9)]
    assert subtract([(0, 10), (20, 30)], [(2, 4), (8, 22), (25, 26)]) == [
        (0, 2),
        (4, 8),
        (22, 25),
        (26, 30),
    ]
    assert subtract([(0, 5)], []) == [(0, 5)]

"""Assignments travel as runs of consecutive events with the same destinations (coordination.runs_of,
Store.publish_assignments / read_assignments), and read back event by event unchanged."""

from __future__ import annotations

import asyncio
import random

from dranspose.core.coordination import AssignedEvent, AssignedRun, runs_of
from dranspose.io.store import Store


def _event(n: int, streams: dict, again: bool = False) -> AssignedEvent:  # type: ignore[type-arg]
    return AssignedEvent(event_number=n, streams=streams, redelivered=again)


def _expand(runs: list[AssignedRun]) -> list[tuple[int, dict, bool]]:  # type: ignore[type-arg]
    return [(n, run.streams, run.redelivered) for run in runs for n in run.events()]


def test_consecutive_equal_events_form_one_run() -> None:
    a, b = {"x": ["w0"]}, {"x": ["w1"]}
    events = [_event(0, a), _event(1, a), _event(2, a), _event(3, b), _event(4, b), _event(5, a)]
    assert runs_of(events) == [
        AssignedRun(0, 3, a, False),
        AssignedRun(3, 2, b, False),
        AssignedRun(5, 1, a, False),
    ]


def test_a_gap_or_a_redelivery_starts_a_new_run() -> None:
    a = {"x": ["w0"], "y": ["w0", "w1"]}
    events = [_event(0, a), _event(2, a), _event(3, a, again=True), _event(4, a, again=True)]
    assert runs_of(events) == [
        AssignedRun(0, 1, a, False),
        AssignedRun(2, 1, a, False),
        AssignedRun(3, 2, a, True),
    ]


def test_runs_expand_to_the_events_they_came_from() -> None:
    rng = random.Random(7)
    choices = [{"x": ["w0"]}, {"x": ["w1"]}, {"x": ["w0"], "y": []}, {"y": ["w0", "w1"]}]
    events, n = [], 0
    for _ in range(500):
        n += rng.choice([1, 1, 1, 2])  # mostly consecutive, sometimes a gap
        events.append(_event(n, rng.choice(choices[:2] if rng.random() < 0.8 else choices)))
    runs = runs_of(events)
    assert len(runs) < len(events)
    assert _expand(runs) == [(e.event_number, e.streams, e.redelivered) for e in events]


def test_published_runs_read_back_in_order(redis_url: str) -> None:
    a, b = {"x": ["w0"]}, {"x": ["w1"], "y": ["w1"]}
    first = [_event(n, a if n < 40 else b) for n in range(64)]
    again = [_event(3, {"x": ["w1"]}, again=True)]

    async def scenario() -> tuple[list[AssignedRun], set[str], list[AssignedEvent]]:
        read_back: list[AssignedEvent] = []
        store = Store(redis_url, prefix="runs-test")
        try:
            await store.publish_assignments("s1", first, answered=["w1", "w0"])
            await store.publish_assignments("s1", again, redelivery=True)
            _, runs, answered = await store.read_assignments("s1", "0", block_ms=100)
            # a successor controller's read: every batch, in chunks (here of one batch)
            async for chunk in store.assignment_chunks("s1", count=1):
                assert len(chunk) == 1
                for _, batch, _ in chunk:
                    read_back.extend(
                        _event(n, r.streams, r.redelivered) for r in batch for n in r.events()
                    )
            return runs, answered, read_back
        finally:
            await store.close()

    runs, answered, events = asyncio.run(scenario())
    # the first batch answered both workers' requests; a re-delivery answers nobody's
    assert answered == {"w0", "w1"}
    assert runs == [
        AssignedRun(0, 40, a, False),
        AssignedRun(40, 24, b, False),
        AssignedRun(3, 1, {"x": ["w1"]}, True),
    ]
    assert events == [*first, *again]

"""A successor controller takes over a running scan, in-process against a real Redis: the store's
reads for the rebuild, the resume itself (its account equals the predecessor's, the request the
predecessor left unanswered is answered once), what cannot be resumed (aborted with the reason)
and two successors racing for the lock (exactly one takes it)."""

from __future__ import annotations

import asyncio
import time

import pytest

from dranspose.core.coordination import (
    AssignedRun,
    ComponentInfo,
    ComponentKind,
    ControllerBusyError,
    ScanInfo,
    WorkerReport,
)
from dranspose.core.protocol import WorkerName
from dranspose.core.triggermap import TriggerMap
from dranspose.io.store import Key, Store
from dranspose.runtime.controller import Controller

W0, W1 = WorkerName("w0"), WorkerName("w1")


async def _components(store: Store) -> None:
    for name in (W0, W1):
        info = ComponentInfo(kind=ComponentKind.worker, name=name, tags=["generic"])
        await store.register(info, 60)
    ingester = ComponentInfo(kind=ComponentKind.ingester, name="ing", streams=["s"])
    await store.register(ingester, 60)


async def _step(controller: Controller, last_id: str) -> str:
    """One round of the scan loop (health checks not due)."""
    run = controller.run_state
    assert run is not None
    last_id, _, _ = await controller.scan_step(run, last_id, time.monotonic(), time.monotonic())
    return last_id


async def _dies(controller: Controller, store: Store) -> None:
    """As a SIGKILL leaves it, except that the lock is gone at once instead of after 5 s."""
    await store.redis.delete(store.key(Key.CONTROLLER_LOCK))


def test_the_store_reads_a_scan_back_in_chunks(redis_url):
    async def scenario() -> None:
        store = Store(redis_url, "resume-store")
        try:
            for first in range(0, 50, 10):
                await store.publish_runs("s1", [AssignedRun(first, 10, {"s": [W0]})], answered=[W0])
            await store.report("s1", WorkerReport(worker=W0, want=3, completed=[1, 2]))
            await store.set_reducer_done("s1")
            batches = [b async for chunk in store.assignment_chunks("s1", count=2) for b in chunk]
            assert [(runs, answered) for _, runs, answered in batches] == [
                ([AssignedRun(first, 10, {"s": [W0]})], [W0]) for first in range(0, 50, 10)
            ]
            reports = [r async for chunk in store.report_chunks("s1") for r in chunk]
            assert [r for _, r in reports] == [
                WorkerReport(worker=W0, want=3, completed=[1, 2]),
                None,  # the reducer's done mark
            ]
            assert await store.trimmed_stream("s1") is None
            assert await store.account_record("s1") is None
            await store.set_account_record("s1", '{"version": 1}')
            assert await store.account_record("s1") == b'{"version": 1}'
            for n in range(200):  # a stream over its cap loses its oldest entries
                await store.redis.xadd(
                    store.key(Key.REPORTS, "s2"), {"n": n}, maxlen=50, approximate=False
                )
            trimmed = await store.trimmed_stream("s2", cap=50) or ""
            assert trimmed.startswith("its reports stream reached its cap (50 kept of")
        finally:
            await store.redis.flushdb()
            await store.close()

    asyncio.run(scenario())


def test_a_successor_resumes_the_scan_and_answers_what_was_left_open(redis_url, caplog):
    async def scenario() -> None:
        store = Store(redis_url, "resume-live")
        try:
            await _components(store)
            first = Controller(store)
            await first.acquire()
            scan = await first.start_scan(TriggerMap.simple(["s"], 100))
            await store.report(scan.scan_id, WorkerReport(worker=W0, want=10))
            await store.report(scan.scan_id, WorkerReport(worker=W1, want=10))
            last = await _step(first, "0")
            await store.report(scan.scan_id, WorkerReport(worker=W0, completed=list(range(8))))
            await store.report(scan.scan_id, WorkerReport(worker=W1, completed=[0, 12, 11]))
            last = await _step(first, last)
            # never answered; a request in the answer's millisecond would count as answered (the
            # worker asks again within a second), so this one comes a few milliseconds later
            await asyncio.sleep(0.005)
            await store.report(scan.scan_id, WorkerReport(worker=W1, want=6))
            before = first.run_state
            assert before is not None
            await _dies(first, store)

            second = Controller(store)
            await second.acquire()
            run = second.run_state
            assert run is not None and run.scan.scan_id == scan.scan_id and not run.scan.stopped
            assert list(run.accounted.spans()) == list(before.accounted.spans())
            # 0..7 (event 0 once both workers did it), 11, 12
            assert run.progress.completed == before.progress.completed == 10
            assert run.progress.resumed == 1 and "resumed from its predecessor" in caplog.text
            assert second.released_events == first.released_events == 21
            assert run.open_requests == {W1: 6}
            seen, _, _ = await store.read_assignments(scan.scan_id, "0", 10)
            await _step(second, run.reports_from)
            seen, new, answered = await store.read_assignments(scan.scan_id, seen, 10)
            assert answered == {W1}  # w1's open request, answered by the successor
            assert new == [AssignedRun(21, 6, {"s": [W1]})]
            await _step(second, run.reports_from)  # nothing asked again: nothing published
            assert (await store.read_assignments(scan.scan_id, seen, 10))[1] == []
            await store.release_controller_lock(second.owner)
        finally:
            await store.redis.flushdb()
            await store.close()

    asyncio.run(scenario())


@pytest.mark.expect_errors
def test_a_scan_without_an_account_record_is_aborted_with_the_reason(redis_url):
    async def scenario() -> None:
        store = Store(redis_url, "resume-old")
        try:
            scan = ScanInfo(scan_id="old", streams=["s"], workers=[W0], n_events=5)
            await store.set_scan(scan)
            await store.publish_runs("old", [AssignedRun(0, 2, {"s": [W0]})], answered=[W0])
            controller = Controller(store)
            await controller.acquire()
            run = controller.run_state
            assert run is not None and run.scan.stopped
            assert run.scan.aborted == (
                f"the controller was replaced during the scan ({controller.owner} took over) and "
                "could not resume it: it has no account record (a controller of an older "
                "version started it)"
            )
            assert run.pending == {0: {W0}, 1: {W0}}  # what the workers may still report
            await store.release_controller_lock(controller.owner)
        finally:
            await store.redis.flushdb()
            await store.close()

    asyncio.run(scenario())


def test_two_successors_racing_for_the_lock_exactly_one_takes_it(redis_url):
    async def scenario() -> None:
        store = Store(redis_url, "resume-race")
        try:
            a, b = Controller(store), Controller(store)
            outcomes = await asyncio.gather(
                a.acquire(wait=0.5), b.acquire(wait=0.5), return_exceptions=True
            )
            busy = [o for o in outcomes if isinstance(o, ControllerBusyError)]
            assert len(busy) == 1 and [a.acquired, b.acquired].count(True) == 1
            winner = a if a.acquired else b
            assert winner.owner in str(busy[0])
            await store.release_controller_lock(winner.owner)
        finally:
            await store.redis.flushdb()
            await store.close()

    asyncio.run(scenario())

"""The end of a scan reaches everyone at once, and leaves nothing behind in Redis.

The controller writes its account the moment a scan is accounted for (not at its next 0.2 s
snapshot), the reducer's done mark wakes the controller's read of the reports, and a finished
scan's streams expire. Before, the end of every scan waited about a quarter of a second on
these polls (bench/throughput.py measured it as a fixed cost per scan).

Real Redis; the pipeline test runs every service in one event loop (tests/pipeline.py).
"""

from __future__ import annotations

import asyncio

import pytest

from dranspose.core.coordination import WorkerReport
from dranspose.core.protocol import WorkerName
from dranspose.io.local_redis import PrivateRedis
from dranspose.io.store import SCAN_STREAMS_TTL, Key, Store
from tests.pipeline import Pipeline, wait_for

CLASSES = ("tests.payloads.frame_sums:SlowSumWorker", "tests.payloads.frame_sums:SumsReducer")


def test_the_reducer_done_mark_wakes_a_blocked_read_of_the_reports(redis_url: str) -> None:
    async def scenario() -> tuple[list[WorkerReport], bool, list[WorkerReport]]:
        store = Store(redis_url, prefix="end-wake")
        try:
            await store.report("s1", WorkerReport(worker=WorkerName("w0"), completed=[1, 2]))
            last_id, first = await store.read_reports("s1", "0", block_ms=0)
            # blocks far longer than the test waits: only the mark can end it in time
            reading = asyncio.create_task(store.read_reports("s1", last_id, block_ms=60_000))
            await asyncio.sleep(0.1)
            await store.set_reducer_done("s1")
            _, woken = await asyncio.wait_for(reading, 10)
            return first, await store.reducer_done("s1"), woken
        finally:
            await store.close()

    first, done, woken = asyncio.run(scenario())
    assert [r.completed for r in first] == [[1, 2]]
    assert done
    assert woken == []  # the mark is no report: nothing for the controller to count


def test_a_finished_scan_is_final_for_the_reducer_and_its_streams_expire(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAME_SUMS_SECONDS", "0")
    events = 20

    async def scenario() -> tuple[dict, dict, list[int]]:
        with PrivateRedis() as redis:
            async with Pipeline(redis.url, *CLASSES, ["det"], prefix="end") as pipe:
                scan_id, progress = await pipe.stins_scan("det", events)
                store = pipe.stores[0]

                async def expiring() -> bool:
                    ttls = [await store.redis.ttl(store.key(k, scan_id)) for k in KEYS]
                    return all(ttl > 0 for ttl in ttls)

                await wait_for(expiring, 10)
                ttls = [await store.redis.ttl(store.key(k, scan_id)) for k in KEYS]
                summary = pipe.reducer.context["scan_summary"]
                return progress, summary, ttls

    progress, summary, ttls = asyncio.run(asyncio.wait_for(scenario(), 90))
    assert progress["completed"] == events + 2 and progress["reducer_finished"], progress
    # finish saw the controller's final account, not a snapshot taken before the last reports
    assert summary["final"] is True, summary
    assert summary["completed"] == events + 2, summary
    assert all(0 < ttl <= SCAN_STREAMS_TTL for ttl in ttls), ttls


KEYS = (Key.ASSIGNED, Key.REPORTS)

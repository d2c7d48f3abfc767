"""A worker starts a scan with a quarter of the queue its previous scan measured; its first
request doubles that (slow start: nothing is queued yet), so it asks for half the queue it
measured at once and the rest as the rate shows it needs it.

Scans at a beamline follow each other with the same payload. A worker that started every scan
asking for a handful of events made the first ~100 ms of a fast scan wait on request round
trips while its queue grew (the p99 latency of a whole scan came from there); a slow payload
must still start with a small queue, so a short scan spreads over the workers.

Real Redis and ZeroMQ; the services run in one event loop (tests/pipeline.py). What a worker
asked for is read back from the scan's report stream in Redis.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from dranspose.io.local_redis import PrivateRedis
from dranspose.io.store import Key
from dranspose.runtime.worker import CAPACITY, MIN_QUEUE, QUEUE_SECONDS
from tests.pipeline import Pipeline

CLASSES = ("tests.payloads.frame_sums:SlowSumWorker", "tests.payloads.frame_sums:SumsReducer")


async def _first_wants(pipe: Pipeline, scan_id: str) -> dict[str, int]:
    """Each worker's first request for events in a scan (from the report stream)."""
    _, reports = await pipe.stores[0].read_reports(scan_id, "0", block_ms=0)
    first: dict[str, int] = {}
    for report in reports:
        if report.want and report.worker not in first:
            first[report.worker] = report.want
    return first


async def _one_open_request(pipe: Pipeline, scan_id: str) -> dict[str, int]:
    """Check, from the scan's streams, that no worker asked again before its request was
    answered (or a second went by, when a request may be repeated); its requests per worker.

    Both streams' entry ids are the Redis server's milliseconds; within one millisecond an ask
    is taken to come before an answer (the controller can answer that fast, a worker cannot
    read an answer and ask again in that time)."""
    store = pipe.stores[0]
    asks = await store.redis.xrange(store.key(Key.REPORTS, scan_id))
    answers = await store.redis.xrange(store.key(Key.ASSIGNED, scan_id))
    timeline = sorted(
        [(*_stamp(i, 0), f) for i, f in asks] + [(*_stamp(i, 1), f) for i, f in answers],
        key=lambda entry: entry[:3],
    )
    open_since: dict[str, int] = {}
    requests: dict[str, int] = {}
    for ms, kind, _seq, fields in timeline:
        if kind == 1:
            for name in json.loads(fields.get(b"answered", b"[]")):
                open_since.pop(name, None)
            continue
        if b"report" not in fields:
            continue
        report = json.loads(fields[b"report"])
        if not report["want"]:
            continue
        worker = report["worker"]
        assert worker not in open_since or ms - open_since[worker] >= 1000, (worker, ms)
        open_since[worker] = ms
        requests[worker] = requests.get(worker, 0) + 1
    return requests


def _stamp(entry_id: bytes, kind: int) -> tuple[int, int, int]:
    """(milliseconds, kind, sequence) of a stream entry id: the order the entries were added
    in, asks (kind 0) before answers (kind 1) within one millisecond."""
    ms, seq = entry_id.decode().split("-")
    return int(ms), kind, int(seq)


async def _two_scans(redis_url: str, events: int) -> tuple[list[int], dict[str, int], dict]:
    async with Pipeline(redis_url, *CLASSES, ["det"], prefix="qstart") as pipe:
        first_scan, progress = await pipe.stins_scan("det", events)
        assert all(n >= 1 for n in (await _one_open_request(pipe, first_scan)).values())
        assert progress["completed"] == events + 2, progress
        first = await _first_wants(pipe, first_scan)
        assert first and all(want <= 2 * MIN_QUEUE for want in first.values()), first
        carried = [worker.start_target for worker in pipe.workers]
        second_scan, progress = await pipe.stins_scan("det", events)
        await _one_open_request(pipe, second_scan)
        return carried, await _first_wants(pipe, second_scan), progress


def test_a_fast_worker_starts_the_next_scan_with_the_queue_it_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAME_SUMS_SECONDS", "0")
    events = 3000
    with PrivateRedis() as redis:
        carried, wants, progress = asyncio.run(asyncio.wait_for(_two_scans(redis.url, events), 120))
    assert progress["completed"] == events + 2, progress
    # a fast payload measured a rate of hundreds of events/s at least: its queue grew
    assert all(target >= 4 * MIN_QUEUE for target in carried), carried
    # the next scan's first request asks for twice that at once: nothing is queued yet, so slow
    # start doubles it, to half the queue the previous scan measured (at most the capacity)
    expected = {f"worker{i}": min(2 * target, CAPACITY) for i, target in enumerate(carried)}
    assert wants == expected, (wants, carried)


def test_a_slow_worker_starts_the_next_scan_small(monkeypatch: pytest.MonkeyPatch) -> None:
    seconds = 0.02  # 50 events/s per worker: a queue of QUEUE_SECONDS holds about 12
    monkeypatch.setenv("FRAME_SUMS_SECONDS", str(seconds))
    events = 40
    with PrivateRedis() as redis:
        carried, wants, progress = asyncio.run(asyncio.wait_for(_two_scans(redis.url, events), 120))
    assert progress["completed"] == events + 2, progress
    # a quarter of the measured queue; a 0.2 s rate window that catches a batch's completions can
    # read up to twice the true rate, so the bound is the whole queue at the true rate
    bound = int(QUEUE_SECONDS / seconds)
    assert all(MIN_QUEUE <= target <= bound for target in carried), (carried, bound)
    assert all(want <= 2 * bound for want in wants.values()), (wants, bound)

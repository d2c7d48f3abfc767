"""Malformed data-plane messages reaching a worker's or the reducer's inbox are dropped with a
message naming what was wrong, and the scan that follows completes with the right results.

Real Redis, ZeroMQ and HTTP; the services run in one event loop (tests/pipeline.py). Anyone who
can reach a data port can send such messages (docs/security.md): a batched message whose header
announces more frames or results than it carries must never shift frames onto the wrong event.
"""

from __future__ import annotations

import asyncio
import json
import logging

import numpy as np
import pytest
import zmq
import zmq.asyncio

from dranspose.core.coordination import ResultHeader
from dranspose.core.protocol import EventNumber, WorkerName
from dranspose.core.triggermap import TriggerMap
from dranspose.io.local_redis import PrivateRedis
from dranspose.tools.source import StinsSource
from tests.pipeline import Pipeline, request_json, wait_for

IMAGES = 40
SHAPE = (4, 8)
CLASSES = ("tests.payloads.frame_sums:SlowSumWorker", "tests.payloads.frame_sums:SumsReducer")

WORKER_GARBAGE = [
    [b"not json at all", b"frame"],
    # announces two frames for event 1 and one for event 2, carries two
    [
        json.dumps(
            {"scan": "s", "stream": "det", "typ": "STINS", "events": [[1, 2], [2, 1]]}
        ).encode(),
        b"a",
        b"b",
    ],
    [json.dumps({"scan": "s", "stream": "det"}).encode(), b"a"],  # no typ, no events
    # packed: lengths announce 5 bytes, the packed frame has 3
    [
        json.dumps(
            {"scan": "s", "stream": "det", "typ": "STINS", "events": [[1, 2]], "packed": [2, 3]}
        ).encode(),
        b"abc",
    ],
]
RESULTS_SHORT = ResultHeader(
    scan_id="s", worker=WorkerName("worker0"), events=[EventNumber(1), EventNumber(2)]
)
REDUCER_GARBAGE = [
    [b"{broken", b"body"],
    [RESULTS_SHORT.model_dump_json().encode(), b"only one body"],
    [ResultHeader(scan_id="s", worker=WorkerName("worker0")).model_dump_json().encode()],
    [RESULTS_SHORT.model_copy(update={"packed": [3, 3]}).model_dump_json().encode(), b"abcde"],
]


async def _send_all(url: str, messages: list[list[bytes]]) -> None:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.connect(url)
    try:
        for parts in messages:
            await sock.send_multipart(parts)
    finally:
        sock.close(linger=2000)
        ctx.term()


async def _scenario(redis_url: str) -> tuple[dict, dict[int, int], dict[int, int]]:
    async with Pipeline(redis_url, *CLASSES, ["det"], prefix="badplane") as pipe:
        for worker in pipe.workers:
            await _send_all(worker.inbox.url, WORKER_GARBAGE)
        await _send_all(pipe.reducer.inbox.url, REDUCER_GARBAGE)
        await pipe.start_scan(request_json(TriggerMap.simple(["det"], IMAGES)))
        source = StinsSource(
            f"tcp://127.0.0.1:{pipe.upstream_ports['det']}", shape=SHAPE, frames=IMAGES
        )
        expected = {i: int(source.image(i).sum(dtype=np.int64)) for i in range(IMAGES)}
        source.start()
        try:
            progress = await pipe.wait_finished(30)
            assert source.wait_done(10)
        finally:
            source.stop()

        async def reduced() -> bool:
            return len(pipe.reducer.reducer.publish["sums"]) == IMAGES

        await wait_for(reduced, 10)
        return progress, dict(pipe.reducer.reducer.publish["sums"]), expected


@pytest.mark.expect_errors
def test_malformed_messages_are_dropped_and_the_scan_completes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FRAME_SUMS_SECONDS", "0")
    caplog.set_level(logging.ERROR)
    with PrivateRedis() as redis:
        progress, sums, expected = asyncio.run(asyncio.wait_for(_scenario(redis.url), 90))
    assert progress["completed"] == IMAGES + 2, progress
    assert progress["failed"] == [] and progress["lost"] == [], progress
    assert sums == expected
    dropped = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    worker_drops = [m for m in dropped if m.startswith("malformed data-plane message dropped")]
    reducer_drops = [m for m in dropped if m.startswith("malformed result message dropped")]
    # every garbage message reached a worker: each of the two read its own copies
    assert len(worker_drops) == 2 * len(WORKER_GARBAGE), dropped
    assert any("announces 3 frames for events [1, 2], the message has 2" in m for m in worker_drops)
    assert any(
        "packed frame has 3 bytes, the header's lengths add up to 5" in m for m in worker_drops
    )
    assert len(reducer_drops) == len(REDUCER_GARBAGE), dropped
    assert any("announces 2 results, the message has 1" in m for m in reducer_drops)
    assert any(
        "packed frame has 5 bytes, the header's lengths add up to 6" in m for m in reducer_drops
    )
    assert any("empty result message from worker0" in m for m in reducer_drops)

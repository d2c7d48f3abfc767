"""Backpressure: a PUSH detector faster than the workers is held back, nothing is lost, the
queues show in /metrics, and the ingester's read-ahead is bounded in bytes.

The module fixture runs one scan (real Redis, ZeroMQ and HTTP; services in one event loop) of
``IMAGES`` 1 MB STINS images from a PUSH source with no rate limit into two workers that spend
``COST`` seconds per image, so the source could go many times faster than the workers take the
frames. While the scan runs it records what the source has sent and scrapes ``/metrics``; each
test checks one behaviour against numbers computed independently (pixel sums with numpy, the
controller's ``/progress``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
import pytest
import zmq
import zmq.asyncio
from prometheus_client.parser import text_string_to_metric_families

from dranspose.core.backpressure import HeldEvents
from dranspose.core.coordination import ComponentInfo, ComponentKind, UpstreamState
from dranspose.core.triggermap import TriggerMap
from dranspose.http.metrics import PipelineView, render
from dranspose.io.local_redis import PrivateRedis
from dranspose.io.transports import open_upstream
from dranspose.io.transports.zmq_upstream import PULL_RCVHWM
from dranspose.protocols.registry import get_protocol
from dranspose.tools.source import StinsSource
from tests.pipeline import Pipeline, request_json, wait_for

IMAGES = 300
SHAPE = (512, 1024)  # uint16: 1 MiB per image
COST = 0.02
"""Seconds per image in each worker: two workers take at most 100 images/s."""
CLASSES = ("tests.payloads.frame_sums:SlowSumWorker", "tests.payloads.frame_sums:SumsReducer")


def parse_samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@dataclass
class Run:
    progress: dict
    sums: dict[int, int]
    expected_sums: dict[int, int]
    sent_mid_scan: list[tuple[int, int]] = field(default_factory=list)
    """(messages the source had sent, events completed) while the scan ran."""
    scrapes: list[dict] = field(default_factory=list)
    """/metrics samples taken while the scan ran, in order."""


@pytest.fixture(scope="module")
def run() -> Run:
    with PrivateRedis() as redis:
        return asyncio.run(asyncio.wait_for(_scenario(redis.url), 120))


async def _scenario(redis_url: str) -> Run:
    mp = pytest.MonkeyPatch()
    mp.setenv("FRAME_SUMS_SECONDS", str(COST))
    try:
        pipe = Pipeline(redis_url, *CLASSES, ["det"], prefix="backpressure")
        async with pipe:
            await pipe.start_scan(request_json(TriggerMap.simple(["det"], IMAGES)))
            source = StinsSource(
                f"tcp://127.0.0.1:{pipe.upstream_ports['det']}", shape=SHAPE, frames=IMAGES, hwm=2
            )
            expected = {i: int(source.image(i).sum(dtype=np.int64)) for i in range(IMAGES)}
            observed = Run(progress={}, sums={}, expected_sums=expected)
            source.start()
            try:

                async def finished() -> bool:
                    progress = (await pipe.client.get("/api/v1/progress")).json()
                    status = (await pipe.client.get("/api/v1/status")).json()
                    if not status["finished"]:
                        observed.sent_mid_scan.append(
                            (source.stats.messages, progress["completed"])
                        )
                        metrics = await pipe.client.get("/metrics")
                        observed.scrapes.append(parse_samples(metrics.text))
                    return status["finished"]

                await wait_for(finished, 60)
                assert source.wait_done(10)
            finally:
                source.stop()
            observed.progress = (await pipe.client.get("/api/v1/progress")).json()
            observed.sums = dict(pipe.reducer.reducer.publish["sums"])
            return observed
    finally:
        mp.undo()


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# -- a PUSH source is held back, and nothing is lost ----------------------------------------------


def test_a_push_source_is_held_back_while_the_workers_are_behind(run):
    """The source never gets far ahead of the workers: the ingester stops pulling.

    Unchecked, all 300 frames go out in a fraction of a second, long before the workers have
    taken a tenth of them. Held back, the source is ahead of the completed events by at most the
    bounded queues in between (ingester read-ahead, worker queues: about 130 images here),
    however slowly the machine runs the observation loop.
    """
    assert len(run.sent_mid_scan) >= 3, "the scan was hardly observed"
    ahead = max(sent - completed for sent, completed in run.sent_mid_scan)
    assert ahead < IMAGES * 2 // 3, run.sent_mid_scan


def test_every_event_of_a_held_back_source_completes(run):
    progress = run.progress
    assert progress["completed"] == progress["total"] == IMAGES + 2
    assert (progress["failed"], progress["lost"]) == ([], [])


def test_results_of_a_held_back_source_equal_the_sums_of_the_images_sent(run):
    assert run.sums == run.expected_sums


# -- the queues show in /metrics ----------------------------------------------------------------


def test_worker_queue_depth_shows_events_waiting_for_a_slow_payload(run):
    depths = [
        value(s, "dranspose_worker_events_queued", worker=w)
        for s in run.scrapes
        for w in ("worker0", "worker1")
    ]
    assert max(depths) > 0


def test_worker_buffered_bytes_show_the_frames_it_holds(run):
    held = [
        value(s, "dranspose_worker_frames_buffered_bytes", worker=w)
        for s in run.scrapes
        for w in ("worker0", "worker1")
    ]
    assert max(held) >= SHAPE[0] * SHAPE[1] * 2  # at least one image


def test_ingester_blocked_time_grows_while_the_workers_are_behind(run):
    blocked = [
        value(s, "dranspose_ingester_blocked_seconds_total", ingester="det-ingester")
        for s in run.scrapes
    ]
    assert blocked[-1] > blocked[0] >= 0
    assert blocked[-1] > 0.2  # most of a ~3 s scan is spent waiting for workers


def test_dropped_upstream_messages_are_a_metric():
    """What a SUB upstream counts as dropped (tests/test_transports.py) reaches /metrics."""
    info = ComponentInfo(
        kind=ComponentKind.ingester,
        name="pub-ingester",
        streams=["pcap"],
        upstream=UpstreamState(
            url="tcp://h:1", transport="sub", protocol="stins", dropped=7, overflow=5, missing=2
        ),
    )
    samples = parse_samples(render(PipelineView(components=[info])).decode())
    assert (
        value(
            samples,
            "dranspose_upstream_messages_dropped_total",
            stream="pcap",
            ingester="pub-ingester",
        )
        == 7
    )


# -- bounds -------------------------------------------------------------------------------------


def test_a_pull_upstream_reads_ahead_a_bounded_number_of_large_messages():
    """Nothing taken for a second: a PUSH sender of 1 MB messages gets at most the PULL mark, its
    own mark and what the kernel's socket buffers hold (a few MB) out, not ZMQ's default 1000."""

    async def scenario() -> int:
        ctx = zmq.asyncio.Context()
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, 2)
        push.linger = 0
        port = push.bind_to_random_port("tcp://127.0.0.1")
        upstream = open_upstream(get_protocol("raw"), f"tcp://127.0.0.1:{port}", name="r", ctx=ctx)
        sent = 0
        try:
            await upstream.start()
            frame = b"x" * (1 << 20)
            deadline = asyncio.get_running_loop().time() + 1.0
            while asyncio.get_running_loop().time() < deadline:
                try:
                    await push.send(frame, zmq.NOBLOCK)
                    sent += 1
                except zmq.Again:
                    await asyncio.sleep(0.01)
            return sent
        finally:
            await upstream.close()
            push.close()
            ctx.term()

    sent = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert PULL_RCVHWM <= sent <= PULL_RCVHWM + 2 + 24


def test_a_worker_holds_no_more_events_than_fit_in_its_byte_budget():
    held = HeldEvents(budget_bytes=64 << 20)  # explicit, not the default
    held.received(3 * (2 << 20))
    held.processed([2 << 20] * 3)
    assert held.max_events(capacity=256) == 32  # 64 MiB of 2 MiB events
    assert held.max_events(capacity=16) == 16  # the capacity still caps small events
    assert held.bytes == 0

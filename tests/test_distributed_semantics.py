"""The distributed runtime's semantics, one behaviour per test.

Every test runs a whole pipeline in-process (tests/pipeline.py: real Redis, ZeroMQ and HTTP),
drives it through the controller's REST API and plays STINS series into the ingesters from PUSH
sockets bound here. The payloads (tests/payloads/recorder.py) write one JSON line per reducer call
to a file, so the assertions are about exactly what the reducer received.

Frame contents identify their origin: image ``k`` (0-based) of stream ``s`` is a 2x2 uint16 array
filled with ``BASE[s] + k``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pytest
import zmq
import zmq.asyncio

from dranspose.core.parameters import MAX_PARAMETER_BYTES
from dranspose.core.scan_account import ABORT_GRACE_SECONDS
from dranspose.io.store import Key
from dranspose.protocols.stream1.packets import Stream1Data, Stream1End, Stream1Start
from tests.payloads.recorder import FAIL_EVENT, read_records
from tests.pipeline import Pipeline, wait_for
from tests.support.scenarios import check_complete, run
from tests.support.triggermaps import BROADCAST, DISCARD, C, one_part, simple

WORKER = "tests.payloads.recorder:RecordingWorker"
FAILING_WORKER = "tests.payloads.recorder:FailingWorker"
SLOW_FINISH_WORKER = "tests.payloads.recorder:SlowFinishWorker"
REDUCER = "tests.payloads.recorder:RecordingReducer"

BASE = {"a": 1000, "b": 2000}


# --- the detector side -------------------------------------------------------------------------


class Upstream:
    """One stream's detector: a bound PUSH socket sending a STINS series."""

    def __init__(self, ctx: zmq.asyncio.Context, stream: str, port: int) -> None:
        self.stream = stream
        self.sock = ctx.socket(zmq.PUSH)
        self.sock.bind(f"tcp://127.0.0.1:{port}")
        self.msg = 0
        self.frame = 0

    async def _send(self, frames: list[bytes]) -> None:
        await self.sock.send_multipart(frames)
        self.msg += 1

    async def header(self) -> None:
        self.msg, self.frame = 0, 0
        packet = Stream1Start(msg_number=self.msg, htype="header", filename="")
        await self._send(packet.to_stream_data().frames)

    async def images(self, count: int = 1) -> None:
        for _ in range(count):
            value = BASE[self.stream] + self.frame
            packet = Stream1Data.from_array(
                np.full((2, 2), value, np.uint16), msg_number=self.msg, frame=self.frame
            )
            await self._send(packet.to_stream_data().frames)
            self.frame += 1

    async def end(self) -> None:
        await self._send(
            Stream1End(msg_number=self.msg, htype="series_end").to_stream_data().frames
        )

    async def series(self, n_images: int) -> None:
        await self.header()
        await self.images(n_images)
        await self.end()

    def close(self) -> None:
        self.sock.close(linger=0)


class Upstreams(dict):
    """``{stream: Upstream}`` for a pipeline, closed on exit."""

    def __init__(self, pipe: Pipeline) -> None:
        self.ctx = zmq.asyncio.Context()
        super().__init__(
            {s: Upstream(self.ctx, s, port) for s, port in pipe.upstream_ports.items()}
        )

    def __enter__(self) -> Upstreams:
        return self

    def __exit__(self, *exc: object) -> None:
        for upstream in self.values():
            upstream.close()
        self.ctx.term()


def image_value(stream: str, k: int) -> list[int]:
    """The pixels of stream ``stream``'s ``k``-th image (0-based), as the worker reports them."""
    return [BASE[stream] + k] * 4


# --- reading what happened ---------------------------------------------------------------------


def results(path: str) -> list[dict[str, Any]]:
    return [r for r in read_records(path) if r["kind"] == "result"]


def by_event(path: str) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in results(path):
        grouped[r["event"]].append(r)
    return dict(grouped)


async def post_sequence(pipe: Pipeline, request: Any):
    body = request if isinstance(request, (bytes, str)) else json.dumps(request)
    return await pipe.client.post("/api/v1/sequence", content=body)


async def wait_results(path: str, count: int, timeout: float = 10) -> None:
    async def enough() -> bool:
        return len(results(path)) >= count

    await wait_for(enough, timeout)


async def wait_workers_asked(pipe: Pipeline, scan_id: str, timeout: float = 5) -> None:
    """Until every worker has sent its first request for work of this scan.

    Pushing frames only then makes the distribution deterministic enough to see several workers
    take part: otherwise the first worker may finish everything before the others ask.
    """
    key = pipe.stores[0].key(Key.REPORTS, scan_id)
    names = {w.info.name for w in pipe.workers}

    async def all_asked() -> bool:
        entries = await pipe.stores[0].redis.xrange(key)
        asked = {json.loads(fields[b"report"])["worker"] for _, fields in entries}
        return names <= asked

    await wait_for(all_asked, timeout)


async def wait_joined(pipe: Pipeline, scan_id: str, timeout: float = 5) -> None:
    """Until the workers, the reducer and the ingesters all run their session of this scan."""
    components = [*pipe.workers, pipe.reducer, *pipe.ingesters]

    async def joined() -> bool:
        return all(c.info.scan_id == scan_id for c in components)

    await wait_for(joined, timeout)


# --- 1. assembling streams ---------------------------------------------------------------------


def test_two_streams_are_assembled_into_one_event(redis_url, records):
    n = 10

    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["a", "b"], prefix="assemble") as pipe:
            with Upstreams(pipe) as up:
                await pipe.start_scan(simple(["a", "b"], n))
                await up["a"].series(n)
                await up["b"].series(n)
                return await pipe.wait_finished(10)

    progress = run(scenario)
    check_complete(progress, n + 2)
    events = by_event(records)
    assert sorted(events) == list(range(n + 2))
    for e in range(1, n + 1):
        (result,) = events[e]  # exactly one worker got the event...
        payload = result["payload"]
        assert payload["streams"] == ["a", "b"]  # ...with both streams
        assert payload["worker"] == result["worker"]
        for stream in ("a", "b"):
            packet = payload["packets"][stream]
            assert packet["htype"] == "image" and packet["frame"] == e - 1
            assert packet["values"] == image_value(stream, e - 1)
    # the reserved first and last events reach every worker, with every stream
    for e, htype in ((0, "header"), (n + 1, "series_end")):
        assert sorted(r["worker"] for r in events[e]) == ["worker0", "worker1"]
        for r in events[e]:
            assert {p["htype"] for p in r["payload"]["packets"].values()} == {htype}
            assert r["payload"]["streams"] == ["a", "b"]


# --- 2. constraints ----------------------------------------------------------------------------


def test_events_sharing_a_constraint_go_to_one_worker(redis_url, records):
    n = 16  # events 2k+1 and 2k+2 share constraint k

    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["a"], prefix="constraint-events") as pipe:
            for worker in pipe.workers:
                worker.capacity = 2  # small batches, so both workers take part
            with Upstreams(pipe) as up:
                scan_id = await pipe.start_scan(one_part({"a": [C(i // 2) for i in range(n)]}))
                await wait_workers_asked(pipe, scan_id)
                await up["a"].series(n)
                return await pipe.wait_finished(10)

    progress = run(scenario)
    check_complete(progress, n + 2)
    events = by_event(records)
    owner = {}
    for e in range(1, n + 1):
        (result,) = events[e]
        assert result["payload"]["packets"]["a"]["values"] == image_value("a", e - 1)
        owner[e] = result["worker"]
    for k in range(n // 2):
        assert owner[2 * k + 1] == owner[2 * k + 2], (k, owner)
    assert len(set(owner.values())) == 2, f"only one worker took part: {owner}"


def test_streams_sharing_a_constraint_go_to_one_worker(redis_url, records):
    # events 1 and 3: a and b share a constraint; events 2 and 4: they have their own
    mapping = {"a": [C(0), C(1), C(2), C(3)], "b": [C(0), C(4), C(2), C(5)]}

    async def scenario():
        async with Pipeline(
            redis_url, WORKER, REDUCER, ["a", "b"], prefix="constraint-streams"
        ) as pipe:
            for worker in pipe.workers:
                worker.capacity = 2
            with Upstreams(pipe) as up:
                scan_id = await pipe.start_scan(one_part(mapping))
                await wait_workers_asked(pipe, scan_id)
                await up["a"].series(4)
                await up["b"].series(4)
                return await pipe.wait_finished(10)

    progress = run(scenario)
    check_complete(progress, 6)
    events = by_event(records)
    for e in (1, 3):
        (result,) = events[e]
        assert result["payload"]["streams"] == ["a", "b"]
        assert result["payload"]["packets"]["a"]["values"] == image_value("a", e - 1)
        assert result["payload"]["packets"]["b"]["values"] == image_value("b", e - 1)
    for e in (2, 4):  # each stream delivered once, to whichever worker(s) bound its constraint
        delivered = Counter(s for r in events[e] for s in r["payload"]["streams"])
        assert delivered == {"a": 1, "b": 1}


# --- 3. broadcast ------------------------------------------------------------------------------


def test_broadcast_entry_reaches_every_worker(redis_url, records):
    mapping = {"a": [C(0), BROADCAST(), C(1), BROADCAST(), C(2)]}

    async def scenario():
        async with Pipeline(
            redis_url, WORKER, REDUCER, ["a"], n_workers=3, prefix="broadcast"
        ) as pipe:
            with Upstreams(pipe) as up:
                await pipe.start_scan(one_part(mapping))
                await up["a"].series(5)
                return await pipe.wait_finished(10)

    progress = run(scenario)
    check_complete(progress, 7)
    events = by_event(records)
    everyone = ["worker0", "worker1", "worker2"]
    for e in (2, 4):
        assert sorted(r["worker"] for r in events[e]) == everyone
        for r in events[e]:
            assert r["payload"]["packets"]["a"]["values"] == image_value("a", e - 1)
    for e in (1, 3, 5):
        (result,) = events[e]
        assert result["payload"]["packets"]["a"]["values"] == image_value("a", e - 1)


# --- 4. discard --------------------------------------------------------------------------------


def test_discarded_frame_is_read_but_delivered_to_nobody(redis_url, records):
    mapping = {"a": [C(0), DISCARD, C(2), C(3)], "b": [C(0), C(1), C(2), C(3)]}

    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["a", "b"], prefix="discard") as pipe:
            with Upstreams(pipe) as up:
                await pipe.start_scan(one_part(mapping))
                await up["a"].series(4)
                await up["b"].series(4)
                return await pipe.wait_finished(10), pipe.ingesters[0].forwarded

    progress, forwarded_a = run(scenario)
    check_complete(progress, 6)
    assert forwarded_a == 6  # header, 4 images (one of them dropped), end: all read upstream
    events = by_event(records)
    (result,) = events[2]
    assert result["payload"]["streams"] == ["b"]
    assert result["payload"]["packets"]["b"]["values"] == image_value("b", 1)
    # a's second image was consumed by event 2: the third maps to event 3, the fourth to 4
    for e, k in ((1, 0), (3, 2), (4, 3)):
        (result,) = events[e]
        assert result["payload"]["streams"] == ["a", "b"]
        assert result["payload"]["packets"]["a"]["values"] == image_value("a", k)
        assert result["payload"]["packets"]["b"]["values"] == image_value("b", e - 1)


# --- 5. null -----------------------------------------------------------------------------------


def test_null_entries_skip_a_slower_stream(redis_url, records):
    n = 6
    mapping = {"a": [C(i) for i in range(n)], "b": [C(i) if i % 2 == 0 else None for i in range(n)]}

    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["a", "b"], prefix="null") as pipe:
            with Upstreams(pipe) as up:
                await pipe.start_scan(one_part(mapping))
                await up["a"].series(n)
                await up["b"].series(n // 2)  # b only has a frame every second event
                return await pipe.wait_finished(10)

    progress = run(scenario)
    check_complete(progress, n + 2)
    events = by_event(records)
    for e in range(1, n + 1):
        (result,) = events[e]
        payload = result["payload"]
        assert payload["packets"]["a"]["values"] == image_value("a", e - 1)
        if e % 2 == 1:  # events 1, 3, 5: b's frames 0, 1, 2
            assert payload["streams"] == ["a", "b"]
            assert payload["packets"]["b"]["values"] == image_value("b", (e - 1) // 2)
        else:
            assert payload["streams"] == ["a"]
    # b's end message is the last event's, after its three images
    assert all(r["payload"]["packets"]["b"]["htype"] == "series_end" for r in events[n + 1])


# --- 6. tags -----------------------------------------------------------------------------------


def test_tags_route_events_to_matching_workers(redis_url, records):
    gpu = ("gpu",)
    mapping = {"a": [C(0, gpu), C(1), C(2, gpu), C(3), BROADCAST(gpu), BROADCAST()]}
    missing = one_part({"a": [C(0), C(1, ("fpga",))]})

    async def scenario():
        async with Pipeline(
            redis_url, WORKER, REDUCER, ["a"], prefix="tags", worker_tags=[["generic"], ["gpu"]]
        ) as pipe:
            refused = await post_sequence(pipe, missing)
            with Upstreams(pipe) as up:
                await pipe.start_scan(one_part(mapping))
                await up["a"].series(6)
                return refused, await pipe.wait_finished(10)

    refused, progress = run(scenario)
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "stream 'a'" in detail and "event 2" in detail and "'fpga'" in detail, detail
    check_complete(progress, 8)
    events = by_event(records)
    for e in (1, 3, 5):  # tagged gpu: only the gpu worker
        assert [r["worker"] for r in events[e]] == ["worker1"]
        assert events[e][0]["payload"]["tags"] == ["gpu"]
    for e in (2, 4, 6):  # generic: only the generic worker
        assert [r["worker"] for r in events[e]] == ["worker0"]
    # reserved events need no tags: both workers
    assert sorted(r["worker"] for r in events[0]) == ["worker0", "worker1"]


# --- 7. invalid maps ---------------------------------------------------------------------------


INVALID_MAPS = [
    (
        one_part({"a": [C(0), C(1)], "b": [C(0)]}),
        ["part 'main'", "stream 'b'", "event 1", "has 1 entries but stream 'a' has 2"],
    ),
    (
        {"parts": {"main": {"a": [C(0)]}}, "sequence": ["main", "nope"]},
        ["sequence position 1", "unknown part 'nope'"],
    ),
    (
        one_part({"a": [C(0), [{"tags": ["generic"], "constraint": "3"}]]}),
        ["part 'main'", "stream 'a'", "event 1", "constraint must be a non-negative integer"],
    ),
    (
        one_part({"a": [C(0), "x"]}),
        ["part 'main'", "stream 'a'", "event 1", "entry must be null, [] or a list"],
    ),
    (
        one_part({"a": [C(0), [{"tags": "gpu", "constraint": 1}]]}),
        ["stream 'a'", "event 1", "tags must be a list of non-empty strings"],
    ),
    ('{"parts": ', ["not valid JSON"]),
    (one_part({"a": [C(0)], "c": [C(0)]}), ["stream(s) 'c' have no registered ingester"]),
]


def test_invalid_maps_are_refused_and_the_controller_keeps_working(redis_url, records):
    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["a", "b"], prefix="invalid") as pipe:
            answers = [await post_sequence(pipe, request) for request, _ in INVALID_MAPS]
            no_sequence = await pipe.client.get("/api/v1/sequence")
            with Upstreams(pipe) as up:
                await pipe.start_scan(simple(["a", "b"], 3))
                await up["a"].series(3)
                await up["b"].series(3)
                return answers, no_sequence, await pipe.wait_finished(10)

    answers, no_sequence, progress = run(scenario)
    problems = []
    for (request, fragments), answer in zip(INVALID_MAPS, answers):
        detail = answer.json().get("detail", "") if answer.status_code == 422 else answer.text
        if answer.status_code != 422 or not all(f in str(detail) for f in fragments):
            problems.append((request, answer.status_code, detail))
    assert not problems, problems
    assert no_sequence.status_code == 404  # none of them started a scan
    check_complete(progress, 5)
    assert len(results(records)) == 3 + 2 * 2


# --- 8. batching -------------------------------------------------------------------------------


def test_assignments_travel_in_batches(redis_url, records):
    n = 200

    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["a"], prefix="batching") as pipe:
            with Upstreams(pipe) as up:
                scan_id = await pipe.start_scan(simple(["a"], n))
                await up["a"].series(n)
                progress = await pipe.wait_finished(15)
                entries = await pipe.stores[0].redis.xlen(f"{pipe.prefix}:assigned:{scan_id}")
                return progress, entries

    progress, entries = run(scenario)
    check_complete(progress, n + 2)
    assert sorted(by_event(records)) == list(range(n + 2))
    assert 0 < entries < n / 5, f"{entries} assignment entries for {n} events"


# --- 9. parameters -----------------------------------------------------------------------------


def test_parameter_change_mid_scan(redis_url, records):
    n, first_half, gap = 70, 20, 0.03

    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["a"], prefix="parameters") as pipe:
            with Upstreams(pipe) as up:
                await pipe.start_scan(simple(["a"], n))
                await up["a"].header()
                await up["a"].images(first_half)
                await wait_results(records, 2 + first_half)  # 2: both workers got the header
                changed = await pipe.client.post("/api/v1/parameter/x?full=true", content=b"7")
                t_changed = time.monotonic()
                bad = await pipe.client.post("/api/v1/parameter/x", content=b"seven")
                # an undeclared name is stored as raw bytes (as the original), within the limit
                oversized = b"\0" * (MAX_PARAMETER_BYTES + 1)
                unknown = await pipe.client.post("/api/v1/parameter/nope", content=oversized)
                pushed_at: dict[int, float] = {}
                for k in range(first_half, n):  # trickle the rest to see when the value lands
                    pushed_at[k + 1] = time.monotonic() - t_changed
                    await up["a"].images(1)
                    await asyncio.sleep(gap)
                await up["a"].end()
                progress = await pipe.wait_finished(10)
                value = await pipe.client.get("/api/v1/parameter/x")
                return changed, bad, unknown, pushed_at, progress, value

    changed, bad, unknown, pushed_at, progress, value = run(scenario)
    assert changed.status_code == 200 and changed.json()["value"] == 7
    assert bad.status_code == 422
    assert "'x'" in bad.json()["detail"] and "not a valid int" in bad.json()["detail"]
    assert unknown.status_code == 422 and "exceeds the limit" in unknown.json()["detail"]
    assert value.content == b"7"  # the refused value did not replace the accepted one
    check_complete(progress, n + 2)

    found = results(records)
    values_by_hash: dict[str, set] = defaultdict(set)
    for r in found:
        values_by_hash[r["parameters_hash"]].add(r["payload"]["param"])
    assert all(len(v) == 1 for v in values_by_hash.values()), dict(values_by_hash)
    assert {v for vs in values_by_hash.values() for v in vs} == {0, 7}
    assert len(values_by_hash) == 2

    images = {r["event"]: r["payload"]["param"] for r in found if 1 <= r["event"] <= n}
    assert all(images[e] == 0 for e in range(1, first_half + 1))
    new = [e for e in sorted(images) if images[e] == 7]
    assert new, "the new value never reached a worker"
    # every frame pushed a second after the change was processed with the new value
    late = [e for e, t in pushed_at.items() if t >= 1.0]
    assert late, "the trickle was too short to measure the latency"
    assert [e for e in late if images[e] != 7] == []
    assert pushed_at[new[0]] < 1.0


# --- 10. stop ----------------------------------------------------------------------------------


def test_stop_mid_scan_finishes_workers_and_reducer(redis_url, records):
    n = 20

    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["a"], prefix="stop") as pipe:
            with Upstreams(pipe) as up:
                await pipe.start_scan(simple(["a"], n))
                await up["a"].header()
                await up["a"].images(5)
                await wait_results(records, 2 + 5)
                stopped = await pipe.client.post("/api/v1/stop?full=true")
                t0 = time.monotonic()
                progress = await pipe.wait_finished(ABORT_GRACE_SECONDS + 10)
                elapsed = time.monotonic() - t0
                status = (await pipe.client.get("/api/v1/status")).json()
                return stopped, progress, status, elapsed

    stopped, progress, status, elapsed = run(scenario)
    assert stopped.status_code == 200 and stopped.json()["stopped"] is True
    assert status["finished"] is True and status["stopped"] is True
    assert progress["finished"] and progress["reducer_finished"]
    assert progress["completed"] < progress["total"] == n + 2
    found = read_records(records)
    assert sorted(r["worker"] for r in found if r["kind"] == "worker_finish") == [
        "worker0",
        "worker1",
    ]
    finishes = [r for r in found if r["kind"] == "reducer_finish"]
    assert len(finishes) == 1 and finishes[0]["results"] == len(results(records))
    # ended by the workers' final reports, not by the grace running out (a generous bound: the
    # reports take well under a second)
    assert elapsed < ABORT_GRACE_SECONDS * 0.8


def test_a_stopped_scan_lists_the_events_it_never_processed(redis_url, records):
    """Nothing disappears silently, not even after a stop: total = completed + failed + lost +
    the events in the ``unprocessed`` ranges, and no unprocessed event reached the reducer."""
    n = 20

    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["a"], prefix="stop-ranges") as pipe:
            with Upstreams(pipe) as up:
                await pipe.start_scan(simple(["a"], n))
                await up["a"].header()
                await up["a"].images(5)
                await wait_results(records, 2 + 5)
                await pipe.client.post("/api/v1/stop")
                return await pipe.wait_finished(5)

    progress = run(scenario)
    unprocessed = {e for first, last in progress["unprocessed"] for e in range(first, last + 1)}
    failed = {f["event_number"] for f in progress["failed"]}
    assert progress["completed"] + len(failed) + len(progress["lost"]) + len(unprocessed) == n + 2
    assert n + 1 in unprocessed and progress["unprocessed_reason"].startswith(
        "the scan was stopped"
    )
    assert not unprocessed & {r["event"] for r in results(records)}


# --- 11. consecutive scans ---------------------------------------------------------------------


def test_three_scans_in_a_row(redis_url, records):
    sizes = [5, 8, 3]

    async def scenario():
        outcomes = []
        async with Pipeline(redis_url, WORKER, REDUCER, ["a"], prefix="scans") as pipe:
            with Upstreams(pipe) as up:
                for n in sizes:
                    seen = len(read_records(records))
                    scan_id = await pipe.start_scan(simple(["a"], n))
                    await up["a"].series(n)
                    progress = await pipe.wait_finished(10)
                    outcomes.append((scan_id, progress, read_records(records)[seen:]))
        return outcomes

    outcomes = run(scenario)
    instances = []
    for n, (scan_id, progress, new) in zip(sizes, outcomes):
        assert progress["scan_id"] == scan_id
        check_complete(progress, n + 2)
        inits = [r for r in new if r["kind"] == "reducer_init"]
        finishes = [r for r in new if r["kind"] == "reducer_finish"]
        assert len(inits) == 1 and len(finishes) == 1, new
        instance = inits[0]["instance"]
        instances.append(instance)
        found = [r for r in new if r["kind"] == "result"]
        assert {r["instance"] for r in found} == {instance}
        assert finishes[0]["instance"] == instance
        # this scan's results, and only them: reserved events from both workers, images once
        assert finishes[0]["results"] == len(found) == n + 2 * 2
        assert Counter(r["event"] for r in found) == Counter([0, 0, n + 1, n + 1, *range(1, n + 1)])
        images = {
            r["event"]: r["payload"]["packets"]["a"]["values"]
            for r in found
            if 1 <= r["event"] <= n
        }
        assert images == {e: image_value("a", e - 1) for e in range(1, n + 1)}
    assert len(set(instances)) == len(sizes)


# --- 12. the REST views ------------------------------------------------------------------------


def test_config_progress_load_and_parameters(redis_url, records):
    n = 4

    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["a"], prefix="views") as pipe:
            with Upstreams(pipe) as up:
                await pipe.start_scan(simple(["a"], n))
                await up["a"].series(n)
                await pipe.wait_finished(10)
                get = pipe.client.get
                return [
                    (await get(path)).json()
                    for path in (
                        "/api/v1/config",
                        "/api/v1/progress",
                        "/api/v1/load",
                        "/api/v1/parameters",
                    )
                ]

    config, progress, load, parameters = run(scenario)
    components = {(c["kind"], c["name"]): c for c in config["components"]}
    assert set(components) == {
        ("controller", "controller"),
        ("ingester", "a-ingester"),
        ("reducer", "reducer"),
        ("worker", "worker0"),
        ("worker", "worker1"),
    }
    assert all(isinstance(c["state"], str) and c["state"] for c in config["components"])
    assert components[("ingester", "a-ingester")]["streams"] == ["a"]
    assert all(components[("worker", w)]["url"] for w in ("worker0", "worker1"))

    assert {"total", "completed", "failed", "lost", "finished"} <= set(progress)
    assert progress["total"] == progress["completed"] == n + 2 and progress["finished"]

    assert set(load) == {"worker0", "worker1"}
    assert all({"completed", "rate_1s", "rate_10s"} <= set(entry) for entry in load.values())
    assert sum(entry["completed"] for entry in load.values()) == n + 2 * 2

    declared = {p["name"]: p for p in parameters}
    assert declared["x"]["dtype"] == "int" and declared["x"]["default"] == 0
    assert declared["label"]["dtype"] == "str"


# --- 13. failures ------------------------------------------------------------------------------


@pytest.mark.expect_errors
def test_payload_exception_is_reported_as_failed_event(redis_url, records):
    n = 6

    async def scenario():
        async with Pipeline(redis_url, FAILING_WORKER, REDUCER, ["a"], prefix="failure") as pipe:
            with Upstreams(pipe) as up:
                await pipe.start_scan(simple(["a"], n))
                await up["a"].series(n)
                return await pipe.wait_finished(10)

    progress = run(scenario)
    assert progress["total"] == n + 2 and progress["lost"] == []
    (failure,) = progress["failed"]
    assert failure["event_number"] == FAIL_EVENT
    assert failure["worker"] in ("worker0", "worker1")
    assert "ValueError" in failure["reason"] and f"refusing event {FAIL_EVENT}" in failure["reason"]
    assert progress["completed"] + len(progress["failed"]) == progress["total"]
    events = by_event(records)
    assert FAIL_EVENT not in events
    assert sorted(events) == [e for e in range(n + 2) if e != FAIL_EVENT]


# --- stops and replacements at awkward moments -------------------------------------------------


def test_stop_right_after_start_still_finishes(redis_url, records):
    """A scan stopped before its workers joined it finishes, and the next scan runs normally."""

    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["a"], prefix="early-stop") as pipe:
            with Upstreams(pipe) as up:
                await pipe.start_scan(simple(["a"], 5))
                await pipe.client.post("/api/v1/stop")
                t0 = time.monotonic()
                stopped = await pipe.wait_finished(ABORT_GRACE_SECONDS + 10)
                elapsed = time.monotonic() - t0
                seen = len(read_records(records))
                await pipe.start_scan(simple(["a"], 3))
                await up["a"].series(3)
                return stopped, elapsed, await pipe.wait_finished(8), read_records(records)[seen:]

    stopped, elapsed, progress, new = run(scenario)
    assert stopped["finished"] and stopped["reducer_finished"]
    assert elapsed < ABORT_GRACE_SECONDS * 0.8  # not by the grace running out
    check_complete(progress, 5)
    assert sorted(r["event"] for r in new if r["kind"] == "result") == [0, 0, 1, 2, 3, 4, 4]


@pytest.mark.parametrize(
    "pushed_before, worker",
    [
        (0, WORKER),
        (5, WORKER),
        (5, SLOW_FINISH_WORKER),  # one worker still finishes the old scan while the other starts
    ],
    ids=["before-any-frame", "mid-scan", "slow-finish"],
)
def test_new_scan_replaces_a_running_one(redis_url, records, pushed_before, worker):
    """POST /sequence during a scan: the old scan ends, the new one gets all its frames and results.

    The new series is pushed right after the POST, while the old scan's components may still be
    winding down: its header must not be consumed by the old scan, and results of the new scan
    reaching the reducer before it finished the old one must not be dropped.
    """
    n_old, n_new = 20, 6

    async def scenario():
        async with Pipeline(redis_url, worker, REDUCER, ["a"], prefix="replace") as pipe:
            with Upstreams(pipe) as up:
                old = await pipe.start_scan(simple(["a"], n_old))
                await wait_joined(pipe, old)
                if pushed_before:
                    await up["a"].header()
                    await up["a"].images(pushed_before)
                    await wait_results(records, 2 + pushed_before)
                new = await pipe.start_scan(simple(["a"], n_new))
                await up["a"].series(n_new)
                return old, new, await pipe.wait_finished(10)

    _old, new, progress = run(scenario)
    assert progress["scan_id"] == new
    check_complete(progress, n_new + 2)
    found = read_records(records)
    inits = [r["instance"] for r in found if r["kind"] == "reducer_init"]
    finishes = [r["instance"] for r in found if r["kind"] == "reducer_finish"]
    assert inits == finishes  # every reducer instance (old scan, new scan) ran finish
    last = inits[-1]
    latest = [r for r in found if r["kind"] == "result" and r["instance"] == last]
    assert Counter(r["event"] for r in latest) == Counter(
        [0, 0, n_new + 1, n_new + 1, *range(1, n_new + 1)]
    )
    images = {
        r["event"]: r["payload"]["packets"]["a"]["values"]
        for r in latest
        if 1 <= r["event"] <= n_new
    }
    assert images == {e: image_value("a", e - 1) for e in range(1, n_new + 1)}

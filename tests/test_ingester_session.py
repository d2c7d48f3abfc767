"""One ingester's part in one scan (runtime/ingester_session.py), on real parts: a detector's PUSH
socket, the ingester's upstream, workers' PULL sockets and a private Redis.

The process tests (test_processes.py, test_distributed*.py, test_faults.py) run the same code
through whole pipelines; these pin down what one session does with each kind of message.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Optional

import zmq
import zmq.asyncio

from dranspose.core.backpressure import WaitClock
from dranspose.core.coordination import AssignedRun, ComponentInfo, ComponentKind, ScanInfo
from dranspose.core.protocol import StreamName, WorkerName
from dranspose.io.capture import CaptureWriter, read_capture
from dranspose.io.dataplane import decode_partial
from dranspose.io.store import Store
from dranspose.protocols.registry import Kind
from dranspose.runtime.ingester import Ingester
from dranspose.runtime.ingester_session import AssignmentQueue, IngesterSession
from tests.ports import free_port

STREAM = StreamName("cam")
W0, W1 = WorkerName("w0"), WorkerName("w1")


def _header() -> list[bytes]:
    return [json.dumps({"htype": "header", "msg_number": 0}).encode()]


def _image(n: int) -> list[bytes]:
    return [json.dumps({"htype": "image", "frame": n, "msg_number": n + 1}).encode(), b"x" * n]


def _end(n: int) -> list[bytes]:
    return [json.dumps({"htype": "series_end", "msg_number": n}).encode()]


def _run(first: int, length: int, *workers: WorkerName) -> AssignedRun:
    return AssignedRun(first, length, {STREAM: list(workers)})


class Rig:
    """A detector bound at a port, an ingester reading it, two workers bound and registered."""

    def __init__(self, redis_url: str) -> None:
        self.store = Store(redis_url, prefix=uuid.uuid4().hex)
        self.ctx = zmq.asyncio.Context()
        port = free_port()
        self.detector = self.ctx.socket(zmq.PUSH)
        self.detector.bind(f"tcp://127.0.0.1:{port}")
        self.ingester = Ingester(self.store, STREAM, f"tcp://127.0.0.1:{port}", protocol="stins")
        self.workers: dict[str, zmq.asyncio.Socket] = {}
        self.urls: dict[str, str] = {}
        for name in (W0, W1):
            sock = self.ctx.socket(zmq.PULL)
            port = free_port()
            sock.bind(f"tcp://127.0.0.1:{port}")
            self.workers[name] = sock
            self.urls[name] = f"tcp://127.0.0.1:{port}"

    async def start(self, scan: ScanInfo) -> None:
        for name, url in self.urls.items():
            await self.store.register(
                ComponentInfo(kind=ComponentKind.worker, name=name, url=url), ttl=30
            )
        await self.store.set_scan(scan)
        await self.ingester.upstream.start()

    async def upstream_ready(self) -> None:
        """Wait until a message is in the ingester's upstream socket (a PULL upstream reads
        on demand), so that the session finds it at once."""
        readable = self.ingester.upstream.readable  # type: ignore[attr-defined]
        assert await readable.wait(10), "upstream did not deliver"

    async def received(self, worker: str) -> list[tuple[int, list[bytes]]]:
        """The events (number, frames) a worker's socket holds, in order."""
        sock, events = self.workers[worker], []
        while await sock.poll(200):
            _, batch = decode_partial(await sock.recv_multipart(copy=False))
            assert batch.stream == STREAM
            events += [(n, [bytes(f) for f in data.frames]) for n, data, _ in batch.events]
        return events

    async def close(self) -> None:
        ing = self.ingester
        await ing.upstream.close()
        ing.outboxes.close()
        ing.ctx.term()
        for sock in [self.detector, *self.workers.values()]:
            sock.close(linger=0)
        self.ctx.term()
        await self.store.close()


def test_a_session_discards_before_the_series_and_sends_each_event_where_assigned(
    redis_url: str, tmp_path: Path
) -> None:
    """Event 0 to both, 1-2 to w0, 3 to w1, 4 read and dropped, the end to both; a message
    before the header is discarded and numbers nothing; the dump has every event."""
    scan = ScanInfo(scan_id="s1", streams=[STREAM], workers=[W0, W1], n_events=6)
    messages = [_image(99), _header(), _image(1), _image(2), _image(3), _image(4), _end(5)]

    async def scenario() -> tuple[dict[str, list[tuple[int, list[bytes]]]], Rig]:
        rig = Rig(redis_url)
        try:
            await rig.start(scan)
            for message in messages:
                await rig.detector.send_multipart(message)
            await rig.upstream_ready()
            runs = [_run(0, 1, W0, W1), _run(1, 2, W0), _run(3, 1, W1), _run(4, 1)]
            await rig.store.publish_runs("s1", [*runs, _run(5, 1, W0, W1)])
            dump = CaptureWriter(tmp_path / "dump.cbors")
            await asyncio.wait_for(IngesterSession(rig.ingester, scan, dump).take_part(), 10)
            dump.close()
            return {w: await rig.received(w) for w in (W0, W1)}, rig
        finally:
            await rig.close()

    got, rig = asyncio.run(scenario())
    by_number = dict(enumerate(messages[1:]))  # event k is the k-th message from the header
    assert got[W0] == [(n, by_number[n]) for n in (0, 1, 2, 5)]
    assert got[W1] == [(n, by_number[n]) for n in (0, 3, 5)]
    state = rig.ingester.upstream_state
    assert (state.discarded, state.forwarded, state.skipped) == (1, 6, 0)
    assert rig.ingester.carried is None
    assert rig.ingester.info.state == "idle"
    dumped = [
        (m.event_number, [bytes(f) for f in m.streams[STREAM].frames])
        for m in read_capture(tmp_path / "dump.cbors")
    ]
    assert dumped == list(by_number.items())


def test_a_series_starting_after_the_scan_stopped_is_carried_to_the_next_session(
    redis_url: str,
) -> None:
    """The header read once the controller stopped the scan opens the next scan's series: the
    session leaves it to the ingester (``carried``) and sends nothing."""
    scan = ScanInfo(scan_id="s1", streams=[STREAM], workers=[W0, W1], n_events=3)

    async def scenario() -> tuple[dict[str, list[tuple[int, list[bytes]]]], Rig]:
        rig = Rig(redis_url)
        try:
            await rig.start(scan)
            await rig.store.publish_runs("s1", [_run(0, 3, W0)])
            await rig.store.set_scan(scan.model_copy(update={"stopped": True}))
            await rig.detector.send_multipart(_header())
            await rig.upstream_ready()
            await asyncio.wait_for(IngesterSession(rig.ingester, scan, None).take_part(), 10)
            return {w: await rig.received(w) for w in (W0, W1)}, rig
        finally:
            await rig.close()

    got, rig = asyncio.run(scenario())
    assert got == {W0: [], W1: []}
    carried = rig.ingester.carried
    assert carried is not None and carried[0] is Kind.START
    assert [bytes(f) for f in carried[1]] == _header()
    assert rig.ingester.upstream_state.forwarded == 0


def test_the_assignment_queue_waits_for_assignments_and_gives_up_at_the_end() -> None:
    async def scenario() -> tuple[list[Optional[tuple[int, list[WorkerName]]]], float]:
        clock = WaitClock()
        stop = False
        queue = AssignmentQueue(clock, lambda: stop)
        got: list[Optional[tuple[int, list[WorkerName]]]] = []
        waiter = asyncio.create_task(queue.next())
        await asyncio.sleep(0.05)
        assert not waiter.done()  # nothing assigned yet: it waits
        queue.extend(range(3, 5), [W1])
        queue.wake()
        got.append(await waiter)
        got.append(await queue.next())  # already there: no wait
        stopped = asyncio.create_task(queue.next())
        await asyncio.sleep(0.01)
        stop = True
        queue.wake()  # nothing new: it looks again and sees the stop
        got.append(await stopped)
        stop = False
        queue.end()
        got.append(await queue.next())
        return got, clock.seconds

    got, waited = asyncio.run(scenario())
    assert got == [(3, [W1]), (4, [W1]), None, None]
    assert waited >= 0.05  # the time without an assignment is counted as backpressure

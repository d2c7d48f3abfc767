"""The worker's payload thread behind its two queues, and the outbox it sends on.

Real parts: the thread runs in a real thread, with a real worker payload, and sends over a real
ZMQ PUSH -> PULL pair to where a reducer would receive (io/dataplane.ThreadOutbox)."""

from __future__ import annotations

import contextlib
import logging
import pickle
import threading
from typing import Any, Iterator, Optional

import pytest
import zmq

from dranspose.core.calling import WorkerCalls
from dranspose.core.coordination import ComponentKind
from dranspose.core.event import EventData, StreamData
from dranspose.core.parameters import ParameterSet
from dranspose.core.payload import WorkerPayload
from dranspose.core.protocol import EventNumber, ScanId, StreamName, WorkerName
from dranspose.core.stats import StatsRecorder
from dranspose.io.dataplane import ThreadOutbox, decode_results
from dranspose.runtime.payload_thread import BatchOutcome, PayloadThread, Refill, ScanWork


class Doubling:
    """Returns twice the first frame's length; event 3 fails, event 4 returns nothing."""

    def __init__(self, **kwargs: Any) -> None:
        self.finished = False

    def process_event(self, event: EventData, parameters: Any = None) -> Optional[int]:
        if event.event_number == 3:
            raise RuntimeError("event 3 is broken")
        if event.event_number == 4:
            return None
        return 2 * len(event.streams[StreamName("det")].frames[0])

    def finish(self, parameters: Any = None) -> None:
        self.finished = True


@contextlib.contextmanager
def _reducer_socket() -> Iterator[tuple[zmq.Context[Any], zmq.Socket[bytes], str]]:
    ctx: zmq.Context[Any] = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    try:
        yield ctx, pull, f"tcp://127.0.0.1:{port}"
    finally:
        pull.close(linger=0)
        ctx.term()


def _receive(pull: zmq.Socket[bytes]) -> list[zmq.Frame]:
    assert pull.poll(5000), "no message arrived"
    return pull.recv_multipart(copy=False)


def _thread(outbox: ThreadOutbox, last: Optional[int], wake: Any = lambda: None) -> PayloadThread:
    payload = WorkerPayload(Doubling, ParameterSet({}, {}), {}, None)
    work = ScanWork(
        worker=WorkerName("w0"),
        scan_id=ScanId("scan-1"),
        calls=WorkerCalls(payload, "w0"),
        stats=StatsRecorder(ComponentKind.worker, "w0"),
        current_parameters=lambda: ParameterSet({}, {}),
        outbox=outbox,
        last_event=None if last is None else EventNumber(last),
    )
    return PayloadThread(work, Refill(wake))


def _ready(number: int, size: int, redelivered: bool = False) -> Any:
    streams = {StreamName("det"): StreamData(typ="t", frames=[b"x" * size])}
    return (number, streams, size, redelivered)


def _outcomes(thread: PayloadThread) -> list[Optional[BatchOutcome]]:
    found = []
    while not thread.outcomes.empty():
        found.append(thread.outcomes.get_nowait())
    return found


@pytest.mark.expect_errors  # event 3 fails on purpose
def test_events_in_outcomes_out_results_and_done_to_the_reducer() -> None:
    with _reducer_socket() as (ctx, pull, url):
        thread = _thread(ThreadOutbox(ctx, url, give_up=lambda: False), last=None)
        for number, size in [(1, 5), (2, 7), (3, 1), (4, 2)]:
            thread.ready.put(_ready(number, size, redelivered=number == 2))
        thread.ready.put(None)
        runner = threading.Thread(target=thread.process_scan)
        runner.start()
        results: dict[int, tuple[Any, bool]] = {}
        while True:
            header, items = decode_results(_receive(pull))
            assert header.scan_id == "scan-1" and header.worker == "w0"
            if header.kind == "worker_done":
                break
            for item in items:
                results[item.event_number] = (pickle.loads(item.body), item.redelivered)
        runner.join(5)
        assert not runner.is_alive()
    assert results == {1: (10, False), 2: (14, True)}
    outcomes = _outcomes(thread)
    assert outcomes[-1] is None  # processing ended (before finish)
    batches = [o for o in outcomes if o is not None]
    assert [n for o in batches for n in o.completed] == [1, 2, 4]
    assert [(f.event_number, f.worker) for o in batches for f in o.failed] == [(3, "w0")]
    assert sorted(s for o in batches for s in o.released) == [1, 2, 5, 7]
    assert thread.work.calls.payload.instance.finished


def test_the_last_event_ends_the_scan_without_an_end_marker() -> None:
    with _reducer_socket() as (ctx, pull, url):
        thread = _thread(ThreadOutbox(ctx, url, give_up=lambda: False), last=1)
        thread.ready.put(_ready(0, 1))
        thread.ready.put(_ready(1, 1))
        runner = threading.Thread(target=thread.process_scan)
        runner.start()
        runner.join(5)
        assert not runner.is_alive()
        kinds = []
        while pull.poll(200):
            kinds.append(decode_results(pull.recv_multipart(copy=False))[0].kind)
    assert kinds[-1] == "worker_done" and kinds.count("results") >= 1


def test_abandon_ends_without_finish_or_done() -> None:
    with _reducer_socket() as (ctx, pull, url):
        thread = _thread(ThreadOutbox(ctx, url, give_up=lambda: False), last=None)
        runner = threading.Thread(target=thread.process_scan)
        runner.start()
        thread.abandon()
        runner.join(5)
        assert not runner.is_alive()
        assert not pull.poll(200)
    assert _outcomes(thread) == [None]
    assert not thread.work.calls.payload.instance.finished


def test_the_loop_is_woken_when_the_queue_is_at_its_low_water_mark() -> None:
    woken = threading.Event()
    with _reducer_socket() as (ctx, _pull, url):
        thread = _thread(ThreadOutbox(ctx, url, give_up=lambda: False), None, woken.set)
        thread.refill.low_water = -1  # never: a request is pending
        thread.ready.put(_ready(0, 1))
        runner = threading.Thread(target=thread.process_scan)
        runner.start()
        assert not woken.wait(0.3)
        thread.refill.low_water = 0
        thread.ready.put(_ready(1, 1))
        assert woken.wait(5)
        thread.ready.put(None)
        runner.join(5)


@pytest.mark.expect_errors
def test_outbox_without_a_peer_drops_and_says_so_until_given_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with _reducer_socket() as (ctx, pull, url):
        outbox = ThreadOutbox(ctx, None, give_up=lambda: False)
        assert not outbox.has_peer
        with caplog.at_level(logging.ERROR):
            assert outbox.send([b"lost"]) is False
        assert "no reducer registered" in caplog.text
        outbox.connect_later(url)
        assert outbox.send([b"a", b"b"]) is True
        assert [bytes(f) for f in _receive(pull)] == [b"a", b"b"]
        outbox.close()


@pytest.mark.expect_errors
def test_outbox_blocked_at_the_high_water_mark_gives_up_when_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    asked = []

    def give_up() -> bool:
        asked.append(1)
        return len(asked) >= 2

    # nobody listens there: the pipe holds one message, then the send waits
    outbox = ThreadOutbox(ctx, "tcp://127.0.0.1:1", give_up=give_up, hwm=1)
    try:
        assert outbox.send([b"x" * 10]) is True
        assert outbox.send([b"y" * 10]) is False
        assert len(asked) == 2  # asked, waited one step, asked again
        assert "not sent" in caplog.text
    finally:
        outbox.close(linger_ms=0)
        ctx.term()

"""Data-plane messages carry batches: several events of one stream from an ingester to a worker,
several results from a worker to the reducer. They split back exactly.

Sent over a real PUSH -> PULL pair, as the components do (io/dataplane.py)."""

from __future__ import annotations

import contextlib
import json
import pickle
from typing import Iterator

import pytest
import zmq

from dranspose.core.coordination import ResultHeader
from dranspose.core.protocol import EventNumber, WorkerName
from dranspose.io.dataplane import (
    COPY_THRESHOLD,
    PartialHeader,
    decode_partial,
    decode_results,
    drain,
    pack,
    recv_message,
)


@contextlib.contextmanager
def _pair() -> Iterator[tuple[zmq.Socket, zmq.Socket]]:  # type: ignore[type-arg]
    """A connected PUSH -> PULL pair on loopback, as between two components."""
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{port}")
    try:
        yield push, pull
    finally:
        push.close(linger=0)
        pull.close(linger=0)
        ctx.term()


def _roundtrip(parts: list) -> list[zmq.Frame]:  # type: ignore[type-arg]
    with _pair() as (push, pull):
        push.send_multipart(parts, copy=False)
        assert pull.poll(5000), "message did not arrive"
        return pull.recv_multipart(copy=False)


def test_a_batch_splits_into_its_events_with_their_frames() -> None:
    big = bytes(range(256)) * (COPY_THRESHOLD // 256 + 1)
    events = [
        (7, [b'{"htype": "image", "frame": 7}', b"\x07" * 10]),
        (8, [b'{"htype": "image", "frame": 8}']),
        (9, [b'{"htype": "image", "frame": 9}', big, b"tail"]),
    ]
    header = PartialHeader("scan-1", "eiger", "STINS")([(e, len(f)) for e, f in events])
    received = _roundtrip([header, *(f for _, frames in events for f in frames)])
    scan, batch = decode_partial(received)
    assert scan == "scan-1"
    assert batch.stream == "eiger"
    assert [number for number, _, _ in batch.events] == [7, 8, 9]
    for (_, data, size), (_, sent) in zip(batch.events, events):
        assert data.typ == "STINS"
        assert [bytes(f) for f in data.frames] == sent
        assert size == sum(len(f) for f in sent)
    # small frames are bytes for the payload, large ones stay zero-copy frames
    assert isinstance(batch.events[0][1].frames[1], bytes)
    assert isinstance(batch.events[2][1].frames[1], zmq.Frame)


def test_a_batch_whose_counts_do_not_add_up_is_refused() -> None:
    header = PartialHeader("scan-1", "eiger", "STINS")([(1, 2), (2, 2)])
    received = _roundtrip([header, b"a", b"b", b"c"])
    with pytest.raises(
        ValueError, match=r"announces 4 frames for events \[1, 2\], the message has 3"
    ):
        decode_partial(received)


def test_small_frames_travel_packed_in_one_frame_and_split_back_exactly() -> None:
    big = bytes(range(256)) * (COPY_THRESHOLD // 256 + 1)
    events = [
        (3, [b'{"htype": "image", "frame": 3}', b"\x03" * 2048]),
        (4, [b"", b"x" * COPY_THRESHOLD]),  # empty, and exactly at the threshold: both packed
        (5, [b'{"htype": "image", "frame": 5}', big, b"after-big"]),
    ]
    parts = PartialHeader("scan-9", "eiger", "STINS").message(events)
    # header, the packed small frames, then the one large frame on its own
    assert len(parts) == 3 and parts[2] is big
    small = [f for _, frames in events for f in frames if len(f) <= COPY_THRESHOLD]
    assert parts[1] == b"".join(small)
    scan, batch = decode_partial(_roundtrip(parts))
    assert scan == "scan-9" and batch.stream == "eiger"
    assert [number for number, _, _ in batch.events] == [3, 4, 5]
    for (_, data, size), (_, sent) in zip(batch.events, events):
        assert [bytes(f) for f in data.frames] == sent
        assert size == sum(len(f) for f in sent)
    assert isinstance(batch.events[0][1].frames[1], bytes)
    assert isinstance(batch.events[2][1].frames[1], zmq.Frame)


def test_a_batch_of_only_large_frames_is_not_packed() -> None:
    big = b"\x01" * (COPY_THRESHOLD + 1)
    parts = PartialHeader("s", "eiger", "STINS").message([(0, [big]), (1, [big])])
    assert len(parts) == 3 and b"packed" not in parts[0]
    _, batch = decode_partial(_roundtrip(parts))
    assert [bytes(d.frames[0]) for _, d, _ in batch.events] == [big, big]


@pytest.mark.parametrize(
    "packed, frames, message",
    [
        ([2, 2], [b"abc"], r"packed frame has 3 bytes, the header's lengths add up to 4"),
        ([2, -1], [b"ab"], r"2 lengths of which 1 large; the message has 1 frames"),
        ([2], [b"ab"], r"announces 2 frames, 1 lengths"),
        ([2, -3], [b"ab", b"c"], r"announces 2 frames, 2 lengths of which 0 large"),
    ],
)
def test_a_packed_batch_whose_lengths_do_not_add_up_is_refused(
    packed: list[int], frames: list[bytes], message: str
) -> None:
    header = json.dumps(
        {"scan": "s", "stream": "eiger", "typ": "STINS", "events": [[1, 2]], "packed": packed}
    ).encode()
    with pytest.raises(ValueError, match=message):
        decode_partial(_roundtrip([header, *frames]))


def test_a_results_message_splits_into_one_result_per_event() -> None:
    header = ResultHeader(
        scan_id="scan-2",
        worker=WorkerName("w1"),
        parameters_hash="abc",
        events=[EventNumber(4), EventNumber(6), EventNumber(9)],
        redelivered_events=[EventNumber(6)],
    )
    bodies = [pickle.dumps(n * 1.5) for n in (4, 6, 9)]
    got, items = decode_results(_roundtrip([header.model_dump_json().encode(), *bodies]))
    assert (got.kind, got.scan_id, got.worker, got.parameters_hash) == (
        "results",
        "scan-2",
        "w1",
        "abc",
    )
    assert [(i.event_number, i.redelivered) for i in items] == [(4, False), (6, True), (9, False)]
    assert [pickle.loads(i.body) for i in items] == [6.0, 9.0, 13.5]


def test_results_travel_packed_with_large_ones_in_their_own_frames() -> None:
    values = [1.5, "x" * (COPY_THRESHOLD + 10), {"n": 3}]
    bodies = [pickle.dumps(v) for v in values]
    packed, frames = pack(bodies)
    # the two small results share one frame; the large one follows on its own
    assert packed == [len(bodies[0]), -1, len(bodies[2])]
    assert frames == [bodies[0] + bodies[2], bodies[1]]
    header = ResultHeader(
        scan_id="scan-3",
        worker=WorkerName("w2"),
        events=[EventNumber(10), EventNumber(11), EventNumber(12)],
        redelivered_events=[EventNumber(12)],
        packed=packed,
    )
    got, items = decode_results(_roundtrip([header.model_dump_json().encode(), *frames]))
    assert got.worker == "w2"
    assert [(i.event_number, i.redelivered) for i in items] == [
        (10, False),
        (11, False),
        (12, True),
    ]
    assert [pickle.loads(i.body) for i in items] == values
    short = header.model_copy(update={"packed": [len(bodies[0]), -1, len(bodies[2]) + 1]})
    with pytest.raises(ValueError, match="the header's lengths add up to"):
        decode_results(_roundtrip([short.model_dump_json().encode(), *frames]))


def test_worker_done_and_malformed_results_messages() -> None:
    done = ResultHeader(kind="worker_done", scan_id="s", worker=WorkerName("w0"))
    header, items = decode_results(_roundtrip([done.model_dump_json().encode()]))
    assert (header.kind, header.worker, items) == ("worker_done", "w0", [])
    short = ResultHeader(
        scan_id="s", worker=WorkerName("w0"), events=[EventNumber(1), EventNumber(2)]
    )
    with pytest.raises(ValueError, match="w0 announces 2 results, the message has 1"):
        decode_results(_roundtrip([short.model_dump_json().encode(), b"x"]))
    empty = ResultHeader(scan_id="s", worker=WorkerName("w0"))
    with pytest.raises(ValueError, match="empty result message from w0"):
        decode_results(_roundtrip([empty.model_dump_json().encode()]))
    with pytest.raises(ValueError):  # not a header at all
        decode_results(_roundtrip([b"not json", b"x"]))


def test_recv_message_reads_whole_messages_in_order() -> None:
    with _pair() as (push, pull):
        sent = [[b"one"], [b"two", b"x" * 100_000, b""], [b"three", b"y"]]
        for parts in sent:
            push.send_multipart(parts)
        assert pull.poll(5000)
        received: list[list[bytes]] = []
        deadline = 50
        while len(received) < len(sent) and deadline:
            batch = drain(pull, 10)
            received += [[bytes(f) for f in message] for message in batch]
            if not batch:
                pull.poll(100)
                deadline -= 1
        assert received == sent
        with pytest.raises(zmq.Again):
            recv_message(pull)

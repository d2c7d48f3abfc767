"""Synthetic STINS sources: what a PULL socket on the other end of real TCP connections receives."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from dranspose.core.event import InternalWorkerMessage, StreamData
from dranspose.io.capture import (
    CaptureError,
    CaptureWriter,
    RawCaptureWriter,
    read_capture,
    read_raw_capture,
)
from dranspose.protocols.stream1.packets import Stream1Data, Stream1End, Stream1Start
from dranspose.protocols.stream1.parser import parse
from dranspose.tools.source import RawCaptureSource, SourceError, StinsSource
from tests.compat.bslz4_reference import decode_bslz4

ROOT = Path(__file__).resolve().parent.parent
XSPRESS3_RAW = ROOT / "tests" / "data" / "xspress3-dump.cbors"
XRD_DUMP = ROOT / "data" / "dump_xrd.cbors"
ANY_PORT = "tcp://127.0.0.1:*"
TIMEOUT_MS = 5000


def expected_images(seed: int, shape: tuple[int, ...], dtype: str, count: int) -> list[np.ndarray]:
    """The documented rule: a pool of 8 images from default_rng(seed), image k = pool[k % 8]."""
    pool = np.random.default_rng(seed).integers(0, 1000, size=(8, *shape)).astype(dtype)
    return [pool[k % 8] for k in range(count)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# the sockets pull() opened in the running test; the ctx fixture closes them (a test's socket is
# often a temporary, collected unclosed before the fixture's teardown would destroy the context)
_opened: list[zmq.Socket] = []


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    while _opened:
        _opened.pop().close(linger=0)
    context.destroy(linger=0)


def pull(ctx: zmq.Context, endpoint: str) -> zmq.Socket:
    sock = ctx.socket(zmq.PULL)
    _opened.append(sock)
    sock.linger = 0
    sock.connect(endpoint)
    return sock


def receive(sock: zmq.Socket, count: int) -> list[list[bytes]]:
    messages = []
    for _ in range(count):
        assert sock.poll(TIMEOUT_MS), f"only {len(messages)} of {count} messages arrived"
        messages.append(sock.recv_multipart())
    return messages


def assert_nothing_more(sock: zmq.Socket) -> None:
    assert sock.poll(200) == 0, "an unexpected extra message arrived"


def msg_numbers(messages: list[list[bytes]]) -> list[int]:
    return [json.loads(frames[0])["msg_number"] for frames in messages]


def htypes(messages: list[list[bytes]]) -> list[str]:
    return [json.loads(frames[0])["htype"] for frames in messages]


# -- generated series -----------------------------------------------------------------------


def test_series_is_header_images_and_series_end_with_consecutive_msg_numbers(ctx):
    with StinsSource(ANY_PORT, frames=4, filename="/data/scan.h5") as source:
        messages = receive(pull(ctx, source.endpoint), 6)
        assert source.wait_done(5)
    assert htypes(messages) == ["header", "image", "image", "image", "image", "series_end"]
    assert msg_numbers(messages) == [0, 1, 2, 3, 4, 5]
    assert json.loads(messages[0][0])["filename"] == "/data/scan.h5"
    assert [len(frames) for frames in messages] == [1, 2, 2, 2, 2, 1]


def test_images_parse_to_the_documented_pseudo_random_pixels(ctx):
    shape, frames = (3, 5), 11  # more images than the pool of 8: the pool repeats
    expected = expected_images(7, shape, "uint16", frames)
    with StinsSource(ANY_PORT, shape=shape, dtype="uint16", frames=frames, seed=7) as source:
        messages = receive(pull(ctx, source.endpoint), frames + 2)
    packets = [parse(StreamData(typ="STINS", frames=m)) for m in messages]
    assert isinstance(packets[0], Stream1Start)
    assert isinstance(packets[-1], Stream1End)
    images = packets[1:-1]
    assert all(isinstance(p, Stream1Data) for p in images)
    assert [p.frame for p in images] == list(range(frames))
    for packet, pixels in zip(images, expected):
        assert packet.data.dtype == np.uint16
        np.testing.assert_array_equal(packet.data, pixels)


def test_images_decode_with_plain_json_and_numpy(ctx):
    shape, frames = (4, 6), 9
    expected = expected_images(3, shape, "int32", frames)
    with StinsSource(ANY_PORT, shape=shape, dtype="int32", frames=frames, seed=3) as source:
        messages = receive(pull(ctx, source.endpoint), frames + 2)
    for k, (header_frame, data_frame) in enumerate(messages[1:-1]):
        header = json.loads(header_frame)
        assert header["frame"] == k
        assert header["shape"] == [4, 6]
        pixels = np.frombuffer(data_frame, dtype=header["type"]).reshape(header["shape"])
        np.testing.assert_array_equal(pixels, expected[k])


def test_bslz4_images_decode_to_the_same_pixels(ctx):
    shape, frames = (64, 48), 3
    expected = expected_images(0, shape, "uint16", frames)
    with StinsSource(ANY_PORT, shape=shape, frames=frames, compression="bslz4") as source:
        messages = receive(pull(ctx, source.endpoint), frames + 2)
    for k, frames_k in enumerate(messages[1:-1]):
        header = json.loads(frames_k[0])
        assert header["compression"] == "bslz4"
        blob = frames_k[1]
        assert len(blob) < 64 * 48 * 2  # values < 1000 in uint16: bitshuffle+lz4 shrinks them
        # independently of dranspose: 12-byte big-endian header, then bitshuffled LZ4 blocks,
        # decoded with the lz4 package and a numpy bit transpose
        nbytes, block_bytes = struct.unpack(">QI", blob[:12])
        assert (nbytes, block_bytes) == (64 * 48 * 2, 4096 * 2)
        pixels = decode_bslz4(blob, np.dtype("uint16")).reshape(shape)
        np.testing.assert_array_equal(pixels, expected[k])
        np.testing.assert_array_equal(
            parse(StreamData(typ="STINS", frames=frames_k)).data, expected[k]
        )


def test_several_series_in_a_row_each_complete(ctx):
    with StinsSource(ANY_PORT, frames=2, n_series=3) as source:
        sock = pull(ctx, source.endpoint)
        messages = receive(sock, 12)
        assert source.wait_done(5)
        assert_nothing_more(sock)
    assert htypes(messages) == ["header", "image", "image", "series_end"] * 3
    assert msg_numbers(messages) == [0, 1, 2, 3] * 3


def test_pause_separates_series(ctx):
    with StinsSource(ANY_PORT, frames=1, n_series=2, pause=0.3) as source:
        sock = pull(ctx, source.endpoint)
        receive(sock, 3)
        end_of_first = time.monotonic()
        (second_header,) = receive(sock, 1)
        gap = time.monotonic() - end_of_first
    assert json.loads(second_header[0])["htype"] == "header"
    assert gap >= 0.2


def test_series_method_yields_exactly_what_is_sent(ctx):
    source = StinsSource(ANY_PORT, shape=(2, 3), frames=3, n_series=2, seed=5)
    with source:
        received = receive(pull(ctx, source.endpoint), 10)
    assert received == list(source.series(2))


def test_push_waits_for_a_late_receiver_and_loses_nothing(ctx):
    with StinsSource(ANY_PORT, frames=50, hwm=2) as source:
        assert not source.wait_done(0.3)
        messages = receive(pull(ctx, source.endpoint), 52)
        assert source.wait_done(5)
    assert msg_numbers(messages) == list(range(52))
    assert source.stats.messages == 52


def test_pub_does_not_wait_for_subscribers():
    with StinsSource(ANY_PORT, frames=50, sock_type="PUB") as source:
        assert source.wait_done(5)
    assert source.stats.messages == 52


def test_rate_limits_images(ctx):
    # 20 images at 100 Hz: the last one is due 19/100 s after the first
    source = StinsSource(ANY_PORT, frames=20, rate=100)
    started = time.monotonic()
    with source:
        receive(pull(ctx, source.endpoint), 22)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.19


def test_stop_returns_quickly_while_blocked_without_receiver():
    source = StinsSource(ANY_PORT, frames=5).start()
    assert not source.wait_done(0.3)  # PUSH with no peer: blocked
    began = time.monotonic()
    stats = source.stop()
    assert time.monotonic() - began < 10.0  # without the interruption it would never return
    assert not source.running
    assert stats.stopped and stats.messages == 0


def test_stop_interrupts_a_slow_rate():
    # one image every 30 s: a stop that waited for the next one would take up to 30 s
    source = StinsSource(ANY_PORT, frames=1000, rate=1 / 30, sock_type="PUB").start()
    time.sleep(0.1)
    began = time.monotonic()
    source.stop()
    assert time.monotonic() - began < 10.0
    assert not source.running


def test_send_statistics_count_messages_and_bytes(ctx):
    with StinsSource(ANY_PORT, shape=(10, 10), dtype="uint16", frames=3) as source:
        messages = receive(pull(ctx, source.endpoint), 5)
        assert source.wait_done(5)
    stats = source.stats
    assert stats.messages == 5
    assert stats.bytes == sum(len(f) for m in messages for f in m)
    assert not stats.stopped


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (0, 4), (-1, 3), (2.5, 3), "ab"])
def test_invalid_shape_is_refused(shape):
    with pytest.raises(ValueError, match="shape"):
        StinsSource(ANY_PORT, shape=shape)


@pytest.mark.parametrize("dtype", ["notatype", "U4", "object", "datetime64[s]"])
def test_invalid_dtype_is_refused(dtype):
    with pytest.raises(ValueError, match="dtype"):
        StinsSource(ANY_PORT, dtype=dtype)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"compression": "gzip"}, "compression"),
        ({"rate": 0}, "rate"),
        ({"frames": -1}, "frames"),
        ({"sock_type": "REQ"}, "sock_type"),
    ],
)
def test_invalid_options_are_refused(kwargs, word):
    with pytest.raises(ValueError, match=word):
        StinsSource(ANY_PORT, **kwargs)


def test_address_in_use_names_the_address():
    with StinsSource(ANY_PORT) as first:  # PUSH without a receiver: stays bound
        endpoint = first.endpoint
        with pytest.raises(SourceError, match="cannot bind " + endpoint.replace(".", r"\.")):
            StinsSource(endpoint).start()


# -- replaying captures -------------------------------------------------------------------------


def test_raw_capture_replay_sends_each_item_as_one_message_in_order(ctx):
    expected = list(read_raw_capture(XSPRESS3_RAW))
    with RawCaptureSource(ANY_PORT, XSPRESS3_RAW) as source:
        sock = pull(ctx, source.endpoint)
        received = receive(sock, len(expected))
        assert source.wait_done(5)
        assert_nothing_more(sock)
    assert source.kind == "raw"
    assert received == expected


def test_ingester_dump_replay_sends_the_first_stream(ctx):
    expected = [m.streams["xrd"].frame_bytes() for m in read_capture(XRD_DUMP)]
    with RawCaptureSource(ANY_PORT, XRD_DUMP) as source:
        received = receive(pull(ctx, source.endpoint), len(expected))
        assert source.wait_done(5)
    assert source.kind == "dump" and source.stream == "xrd"
    assert received == expected


def _two_stream_dump(path: Path) -> None:
    with CaptureWriter(path) as writer:
        for number in range(3):
            writer.write(
                InternalWorkerMessage(
                    event_number=number,
                    streams={
                        "a": StreamData(typ="STINS", frames=[b"a%d" % number]),
                        "b": StreamData(typ="STINS", frames=[b"b%d" % number, b"x" * number]),
                    },
                )
            )


def test_ingester_dump_replay_of_a_named_stream(ctx, tmp_path):
    path = tmp_path / "two.cbors"
    _two_stream_dump(path)
    with RawCaptureSource(ANY_PORT, path, stream="b") as source:
        received = receive(pull(ctx, source.endpoint), 3)
    assert received == [[b"b0", b""], [b"b1", b"x"], [b"b2", b"xx"]]


def test_unknown_stream_is_refused_before_binding(tmp_path):
    path = tmp_path / "two.cbors"
    _two_stream_dump(path)
    source = RawCaptureSource(ANY_PORT, path, stream="c")
    with pytest.raises(ValueError, match="'c' is not in the first event"):
        source.start()
    assert source.endpoint is None


def test_unreadable_capture_raises_capture_error_at_start(tmp_path):
    path = tmp_path / "junk.cbors"
    path.write_bytes(b"\xff\x00 not cbor at all")
    source = RawCaptureSource(ANY_PORT, path)
    with pytest.raises(CaptureError, match="item 0 at byte 0"):
        source.start()
    assert source.endpoint is None


def test_damage_part_way_sends_what_precedes_it_then_raises(ctx, tmp_path):
    path = tmp_path / "cut.cbors"
    with RawCaptureWriter(path) as writer:
        writer.write([b"one"])
        writer.write([b"two", b"2"])
    with open(path, "ab") as fh:
        fh.write(b"\x82\x43ab")  # a list of 2 whose first byte string is cut short
    source = RawCaptureSource(ANY_PORT, path).start()
    try:
        assert receive(pull(ctx, source.endpoint), 2) == [[b"one"], [b"two", b"2"]]
        with pytest.raises(CaptureError, match="item 2"):
            source.wait_done(5)
    finally:
        source.stop()


# -- command line -------------------------------------------------------------------------------


def run_source_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dranspose", "source", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_cli_serves_a_series_to_a_pull_socket(ctx):
    port = free_port()
    sock = pull(ctx, f"tcp://127.0.0.1:{port}")  # ZMQ connects before the bind exists
    result = run_source_cli("--bind", f"tcp://127.0.0.1:{port}", "--frames", "3")
    assert result.returncode == 0, result.stderr
    messages = receive(sock, 5)
    assert_nothing_more(sock)
    assert htypes(messages) == ["header", "image", "image", "image", "series_end"]
    assert "sent 5 messages" in result.stderr.splitlines()[-1]


def test_cli_replays_a_raw_capture(ctx):
    port = free_port()
    sock = pull(ctx, f"tcp://127.0.0.1:{port}")
    result = run_source_cli("--replay", str(XSPRESS3_RAW), "--bind", f"tcp://127.0.0.1:{port}")
    assert result.returncode == 0, result.stderr
    expected = list(read_raw_capture(XSPRESS3_RAW))
    assert receive(sock, len(expected)) == expected


def test_cli_bad_dtype_is_a_one_line_error():
    result = run_source_cli("--bind", f"tcp://127.0.0.1:{free_port()}", "--dtype", "nonsense")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "dtype 'nonsense'" in lines[0]


def test_cli_address_in_use_is_a_one_line_error():
    with StinsSource(ANY_PORT) as busy:  # PUSH without a receiver: stays bound
        result = run_source_cli("--bind", busy.endpoint)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot bind {busy.endpoint}" in lines[0]


@pytest.mark.skipif(os.name != "posix", reason="needs SIGINT")
def test_cli_ctrl_c_stops_cleanly_with_a_summary():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dranspose", "source", "--bind", f"tcp://127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # wait until the source listens (a bare TCP connection is no ZMQ peer)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "source not up"
                time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "sent 0 messages" in stderr.splitlines()[-1]


def test_cli_replay_refuses_image_options():
    result = run_source_cli(
        "--replay", str(XSPRESS3_RAW), "--bind", "tcp://127.0.0.1:1", "--shape", "4", "4"
    )
    assert result.returncode == 2
    assert "--shape do not apply to --replay" in result.stderr

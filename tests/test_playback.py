"""Sources playing a capture back over each protocol's transport: PUB waiting for subscribers,
the PandA-like TCP server, the Sardana-like HTTP poster; checked with plain sockets and a real
HTTP ingester upstream."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from dranspose.io.capture import RawCaptureWriter, read_raw_capture
from dranspose.io.transports.http_upstream import HttpUpstream
from dranspose.protocols.positioncap.parser import CAPTURE_REQUEST
from dranspose.protocols.registry import get_protocol
from dranspose.tools.source import RawCaptureSource, SourceError
from tests.ports import free_port

DATA = Path(__file__).parent / "data"
PCAP = DATA / "pcap-zmq.cbors"
POSITIONCAP = [
    b"arm_time: 2024-03-05T10:12:03.257Z\nmissed: 0\nprocess: Scaled\nformat: ASCII\nfields:\n"
    b" INENC1.VAL double Mean scale: 0.0005 offset: -12.5 units: mm\n\n",
    b" 1.5\n",
    b" 2.5\n",
    b"END 2 Ok\n",
]
SARDANA = [
    b'{"type": "DataDescription", "serialno": 3, "title": "t", "column_desc": [{"name": "x"}]}',
    b'{"type": "RecordData", "point_nb": 0, "x": NaN}',
    b'{"type": "RecordData", "point_nb": 1, "x": 2.5}',
    b'{"type": "RecordEnd"}',
]


def write_raw(path: Path, messages: list[bytes]) -> Path:
    with RawCaptureWriter(path) as out:
        for message in messages:
            out.write([message])
    return path


def test_pub_replay_of_a_sub_protocol_waits_for_its_subscriber():
    expected = list(read_raw_capture(PCAP))
    ctx = zmq.Context()
    port = free_port()
    try:
        with RawCaptureSource(f"tcp://127.0.0.1:{port}", PCAP, protocol="pcap") as source:
            assert source.sock_type == "PUB" and source.subscribers == 1
            assert not source.wait_done(0.5)  # nobody subscribed: nothing published into the void
            assert source.stats.messages == 0
            sub = ctx.socket(zmq.SUB)
            sub.linger = 0
            sub.subscribe(b"")
            sub.connect(source.endpoint)
            received = []
            while len(received) < len(expected):
                assert sub.poll(10_000), f"only {len(received)} of {len(expected)} messages"
                received.append(sub.recv_multipart())
            assert source.wait_done(10)
        assert received == expected
    finally:
        ctx.destroy(linger=0)


def test_tcp_replay_answers_the_request_and_sends_the_bytes(tmp_path):
    capture = write_raw(tmp_path / "pc.cbors", POSITIONCAP)
    port = free_port()
    with RawCaptureSource(f"tcp://127.0.0.1:{port}", capture, protocol="positioncap") as source:
        assert source.sock_type == "TCP"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(CAPTURE_REQUEST)
            received = b""
            while chunk := client.recv(65536):  # the source shuts its side down at the end
                received += chunk
        assert source.wait_done(10)
    assert received == b"OK\n" + b"".join(POSITIONCAP)
    assert source.stats.messages == 4


def test_http_replay_waits_for_the_ingester_then_posts_every_message(tmp_path):
    capture = write_raw(tmp_path / "sd.cbors", SARDANA)
    port = free_port()

    async def ingester_side(source: RawCaptureSource) -> list[bytes]:
        await asyncio.sleep(0.5)  # the source starts first and has to wait
        assert source.running and source.stats.messages == 0
        upstream = HttpUpstream(get_protocol("sardana"), f"http://127.0.0.1:{port}", name="sd")
        await upstream.start()
        try:
            frames = []
            deadline = time.monotonic() + 20
            while len(frames) < len(SARDANA) and time.monotonic() < deadline:
                item = upstream.pop()
                if item is None:
                    await upstream.wait(0.1)
                else:
                    frames.append(item[1][0])
            return frames
        finally:
            await upstream.close()

    with RawCaptureSource(f"http://127.0.0.1:{port}", capture, protocol="sardana") as source:
        frames = asyncio.run(ingester_side(source))
        assert source.wait_done(10)
    # the ingester tags each body with its type again: byte for byte what was captured
    assert frames == SARDANA
    assert source.stats.messages == 4


def test_http_replay_stops_at_a_message_the_ingester_refuses(tmp_path):
    capture = write_raw(tmp_path / "bad.cbors", [SARDANA[0], b'{"neither": "record"}'])
    port = free_port()

    async def ingester_side() -> None:
        upstream = HttpUpstream(get_protocol("sardana"), f"http://127.0.0.1:{port}", name="sd")
        await upstream.start()
        await asyncio.sleep(1.0)
        await upstream.close()

    source = RawCaptureSource(f"http://127.0.0.1:{port}", capture, protocol="sardana").start()
    try:
        asyncio.run(ingester_side())
        with pytest.raises(
            SourceError,
            match="cannot post this message: .*untagged body with "
            "keys 'neither' is no Sardana record",
        ):
            source.wait_done(10)
    finally:
        source.stop()
    assert source.stats.messages == 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"protocol": "positioncap", "sock_type": "PUB"},
            "'positioncap' is sent over TCP, not PUB",
        ),
        ({"protocol": "sardana", "sock_type": "PUSH"}, "'sardana' is sent over HTTP, not PUSH"),
        ({"sock_type": "TCP"}, "a TCP source needs a protocol"),
        ({"protocol": "nope"}, "unknown protocol 'nope'"),
        ({"protocol": "stins", "subscribers": 2}, "subscribers only apply to a PUB source"),
    ],
)
def test_replay_transport_mismatches_are_refused(tmp_path, kwargs, message):
    capture = write_raw(tmp_path / "x.cbors", [b"x"])
    with pytest.raises(ValueError, match=message):
        RawCaptureSource("tcp://127.0.0.1:9", capture, **kwargs)


def test_cli_protocol_needs_replay():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dranspose",
            "source",
            "--bind",
            "tcp://127.0.0.1:9",
            "--protocol",
            "pcap",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--protocol needs --replay" in result.stderr


def test_cli_replays_over_tcp(tmp_path):
    capture = write_raw(tmp_path / "pc.cbors", POSITIONCAP)
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dranspose",
            "source",
            "--replay",
            str(capture),
            "--protocol",
            "positioncap",
            "--bind",
            f"tcp://127.0.0.1:{port}",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "the source never listened"
                time.sleep(0.05)
        with client:
            client.sendall(CAPTURE_REQUEST)
            received = b""
            while chunk := client.recv(65536):
                received += chunk
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert received == b"OK\n" + b"".join(POSITIONCAP)
    assert "dranspose source: sent 4 messages" in stderr

"""Protocol rules, `dranspose capture` and `dranspose convert`: raw streams to replayable dumps."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dranspose.io.capture import read_capture, read_raw_capture
from dranspose.protocols.registry import Kind, get_protocol, number_series
from dranspose.protocols.stream1.parser import parse
from dranspose.tools.source import StinsSource
from tests.ports import free_port


def stins(htype: str, **fields) -> list[bytes]:
    return [json.dumps({"htype": htype, **fields}).encode()]


def test_stins_messages_are_classified_by_htype():
    proto = get_protocol("stins")
    assert proto.classify(stins("header", filename="")) is Kind.START
    assert proto.classify(stins("image", frame=0) + [b"\0" * 8]) is Kind.EVENT
    assert proto.classify(stins("series_end")) is Kind.END
    # a data frame that merely contains the word is not a header
    assert proto.classify([b'{"htype": "image", "note": "header"}']) is Kind.EVENT


def test_number_series_starts_at_the_header_and_stops_at_the_end():
    messages = [
        stins("image", frame=99),
        stins("header", filename="f"),
        stins("image", frame=0),
        stins("image", frame=1),
        stins("series_end"),
        stins("header", filename="second series"),
    ]
    numbered = list(number_series(get_protocol("stins"), messages))
    assert [n for n, _ in numbered] == [0, 1, 2, 3]
    assert [json.loads(m[0])["htype"] for _, m in numbered] == [
        "header",
        "image",
        "image",
        "series_end",
    ]


def test_unknown_protocol_names_the_known_ones():
    with pytest.raises(KeyError, match="known: .*stins"):
        get_protocol("nope")


def test_capture_records_every_message_and_convert_makes_a_replayable_dump(tmp_path):
    port = free_port()
    raw, dump = tmp_path / "raw.cbors", tmp_path / "dump.cbors"
    capture = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dranspose",
            "capture",
            "--upstream",
            f"tcp://127.0.0.1:{port}",
            "-o",
            str(raw),
            "--count",
            "7",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    with StinsSource(f"tcp://127.0.0.1:{port}", shape=(4, 5), frames=5, seed=3) as source:
        _, stderr = capture.communicate(timeout=60)
        assert source.wait_done(10)
    assert capture.returncode == 0, stderr
    items = list(read_raw_capture(raw))
    assert len(items) == 7
    assert [json.loads(i[0])["htype"] for i in items] == ["header"] + ["image"] * 5 + ["series_end"]

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dranspose",
            "convert",
            str(raw),
            "-o",
            str(dump),
            "--stream",
            "det",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    events = list(read_capture(dump))
    assert [e.event_number for e in events] == list(range(7))
    for k, event in enumerate(events[1:6]):
        packet = parse(event.streams["det"])
        np.testing.assert_array_equal(packet.data, source.image(k))


def test_convert_without_a_series_start_says_so(tmp_path):
    from dranspose.io.capture import RawCaptureWriter

    raw = tmp_path / "raw.cbors"
    with RawCaptureWriter(raw) as out:
        out.write(stins("image", frame=0))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dranspose",
            "convert",
            str(raw),
            "-o",
            str(tmp_path / "d.cbors"),
            "--stream",
            "det",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no series start" in result.stderr


@pytest.mark.parametrize(
    "protocol, capture, events",
    [
        ("pcap", "pcap-zmq.cbors", 102),
        ("albaem", "albaem-dump.cbors", 6),
        ("xspress", "xspress3-multipart.cbors", 7),
        ("xspress", "xspress3-dump.cbors", 22),
        ("contrast", "contrast-dump.cbors", 22),
        ("lecroy", "maui-02-continuous-3.cbor.gz", 9),
        ("lecroy", "maui-02-sequential-3.cbor.gz", 10),
        ("eiger_legacy", "eiger-small.cbors", 5),
    ],
)
def test_real_captures_number_into_one_series(protocol, capture, events):
    from pathlib import Path

    path = Path(__file__).parent / "data" / capture
    if not path.exists():
        pytest.skip(f"{capture} not in tests/data")
    numbered = list(number_series(get_protocol(protocol), read_raw_capture(path)))
    assert [n for n, _ in numbered] == list(range(len(numbered)))
    assert get_protocol(protocol).classify(numbered[0][1]) is Kind.START
    assert get_protocol(protocol).classify(numbered[-1][1]) is Kind.END
    if events is not None:
        assert len(numbered) == events


def test_capture_listens_for_http_posts_and_stops_cleanly_on_ctrl_c(tmp_path):
    """An HTTP protocol's capture is the server; SIGINT ends it with a complete file."""
    import signal
    import time

    import httpx

    port = free_port()
    raw = tmp_path / "sardana.cbors"
    capture = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dranspose",
            "capture",
            "--protocol",
            "sardana",
            "--upstream",
            f"http://127.0.0.1:{port}",
            "-o",
            str(raw),
            "--no-progress",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the capture never listened"
                    time.sleep(0.05)
            answers = [
                client.post(
                    "/v1/data_desc", content=b'{"serialno": 1, "title": "t", "column_desc": []}'
                ),
                client.post("/v1/record_data", content=b'{"point_nb": 0}'),
            ]
        assert [a.status_code for a in answers] == [200, 200]
        capture.send_signal(signal.SIGINT)
        _, stderr = capture.communicate(timeout=30)
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait()
    assert capture.returncode == 0, stderr
    assert "dranspose capture: 2 messages" in stderr
    assert list(read_raw_capture(raw)) == [
        [b'{"type": "DataDescription", "serialno": 1, "title": "t", "column_desc": []}'],
        [b'{"type": "RecordData", "point_nb": 0}'],
    ]

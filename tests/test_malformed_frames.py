"""A malformed frame fails its own event, with the parser's message, and nothing else.

Everything is real: Redis, controller, one worker, reducer and ingester as processes, and
``dranspose source --replay`` playing a raw capture in which the image data of event 3 is cut in
half, as a detector with a broken link might send it. The worker's payload parses every frame
with the STINS parser.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from dranspose.core.triggermap import TriggerMap
from dranspose.io.capture import RawCaptureWriter
from tests.badinput_servers import ROOT, running_pipeline
from tests.conftest import raw_xrd_events

BROKEN_EVENT = 3


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """Run one scan over the capture with the truncated frame; the final progress and tree."""
    events = raw_xrd_events()
    header = json.loads(events[BROKEN_EVENT][1][0])
    capture = tmp_path_factory.mktemp("malformed") / "xrd-truncated.cbors"
    with RawCaptureWriter(capture) as writer:
        for number, frames in events:
            if number == BROKEN_EVENT:
                frames = [frames[0], frames[1][: len(frames[1]) // 2]]
            writer.write(frames)
    with running_pipeline() as servers:
        request = TriggerMap.simple(["xrd"], len(events) - 2).request.model_dump(mode="json")
        response = httpx.post(
            f"{servers.controller_url}/api/v1/sequence", content=json.dumps(request), timeout=10
        )
        assert response.status_code == 200, response.text
        source = subprocess.run(
            [
                sys.executable,
                "-m",
                "dranspose",
                "source",
                "--bind",
                servers.upstream,
                "--replay",
                str(capture),
            ],
            cwd=ROOT,
            env=servers.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert source.returncode == 0, source.stderr
        deadline = time.monotonic() + 60
        while not httpx.get(f"{servers.controller_url}/api/v1/status", timeout=10).json()[
            "finished"
        ]:
            assert time.monotonic() < deadline, "scan did not finish within 60 s"
            time.sleep(0.1)
        progress = httpx.get(f"{servers.controller_url}/api/v1/progress", timeout=10).json()
        packets = httpx.get(f"{servers.reducer_url}/api/v1/result/packets", timeout=10).json()
    yield {"progress": progress, "packets": packets, "header": header, "total": len(events)}


def test_the_event_with_the_truncated_frame_is_reported_failed(scan):
    (failure,) = scan["progress"]["failed"]
    assert failure["event_number"] == BROKEN_EVENT
    assert failure["worker"] == "w0"
    assert scan["progress"]["lost"] == []


def test_the_failure_carries_the_parsers_message(scan):
    reason = scan["progress"]["failed"][0]["reason"]
    header = scan["header"]
    pixels = header["shape"][0] * header["shape"][1]
    assert "ParseError" in reason
    assert f"msg_number={header['msg_number']} frame={header['frame']}" in reason
    # half the data arrived: the message says how much came and how much the header promised
    assert f"has {pixels} bytes, expected {2 * pixels} bytes" in reason


def test_the_worker_goes_on_with_the_following_events(scan):
    progress = scan["progress"]
    assert progress["total"] == scan["total"]
    assert progress["completed"] == scan["total"] - 1
    # every other event reached the reducer: header, the images but the broken one, series end
    kinds = [packet[0] for packet in scan["packets"]]
    assert kinds.count("Stream1Data") == scan["total"] - 3
    assert kinds.count("Stream1Start") == 1 and kinds.count("Stream1End") == 1
    frames = sorted(packet[1] for packet in scan["packets"] if packet[0] == "Stream1Data")
    assert scan["header"]["frame"] not in frames
    assert frames == [f for f in range(scan["total"] - 2) if f != scan["header"]["frame"]]

"""``dranspose up``: the whole pipeline from one command, stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import httpx
import numpy as np
import pytest
import redis
import zmq

from dranspose.core.triggermap import TriggerMap
from dranspose.io.capture import read_capture
from tests.conftest import XRD_CAPTURE
from tests.ports import free_port
from tests.support.processes import wait_until
from tests.support.tutorial import expected_reduced


def test_up_runs_the_tutorial_pipeline_and_stops_cleanly(payload_dir):
    api, results, upstream = free_port(), free_port(), free_port()
    ready = payload_dir / "ready.txt"
    ctx = zmq.Context()
    source = ctx.socket(zmq.PUSH)
    source.bind(f"tcp://127.0.0.1:{upstream}")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dranspose",
            "up",
            "-w",
            "src.worker:TestWorker",
            "-r",
            "src.reducer:TestReducer",
            "--workers",
            "2",
            "-i",
            f"xrd=tcp://127.0.0.1:{upstream}",
            "--controller-port",
            str(api),
            "--reducer-port",
            str(results),
            "--ready-file",
            str(ready),
        ],
        cwd=payload_dir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=subprocess.PIPE,
        text=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{api}", timeout=10)
    try:
        wait_until(
            lambda: len(client.get("/api/v1/config").json()["components"]) >= 5, 60, "registration"
        )
        redis_url = ready.read_text()
        request = TriggerMap.simple(["xrd"], 9).request.model_dump(mode="json")
        assert client.post("/api/v1/sequence", content=json.dumps(request)).status_code == 200
        for message in read_capture(XRD_CAPTURE):
            source.send_multipart(message.streams["xrd"].frames)
        wait_until(lambda: client.get("/api/v1/status").json()["finished"], 60, "scan end")
        published = httpx.get(f"http://127.0.0.1:{results}/api/v1/result/reduced").json()
        np.testing.assert_allclose(published[1:], expected_reduced(2, 8)[1:], rtol=1e-6)
        with h5py.File(payload_dir / "output" / "xrd_processed.h5") as fh:
            np.testing.assert_allclose(fh["reduced"][:], expected_reduced(2, 8), rtol=1e-6)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
        try:
            with redis.Redis.from_url(redis_url, socket_connect_timeout=0.5) as gone:
                gone.ping()
            raise AssertionError("the private Redis should be gone")
        except redis.ConnectionError:
            pass
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
        source.close(linger=0)
        ctx.term()


def test_ctrl_c_during_a_scan_waiting_for_data_stops_everything_promptly(payload_dir):
    """Workers in a scan whose detector never sends must not hold Ctrl-C up."""
    api, results, upstream = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dranspose",
            "up",
            "-w",
            "src.worker:TestWorker",
            "-r",
            "src.reducer:TestReducer",
            "--workers",
            "2",
            "-i",
            f"xrd=tcp://127.0.0.1:{upstream}",
            "--controller-port",
            str(api),
            "--reducer-port",
            str(results),
        ],
        cwd=payload_dir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{api}", timeout=10)
    try:
        wait_until(
            lambda: len(client.get("/api/v1/config").json()["components"]) >= 5, 60, "registration"
        )
        request = TriggerMap.simple(["xrd"], 1000).request.model_dump(mode="json")
        assert client.post("/api/v1/sequence", content=json.dumps(request)).status_code == 200
        wait_until(
            lambda: all(
                c["state"] == "scanning"
                for c in client.get("/api/v1/config").json()["components"]
                if c["kind"] == "worker"
            ),
            30,
            "workers joining the scan",
        )
        pids = [c["pid"] for c in client.get("/api/v1/config").json()["components"]]
        assert len(pids) == 5 and all(pids)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=9)  # less than one grace period per child
        assert proc.returncode == 0, stderr
        assert "killed" not in stderr, stderr
        alive = [
            pid
            for pid in pids
            if os.path.exists(f"/proc/{pid}")
            and "zombie" not in Path(f"/proc/{pid}/status").read_text()
        ]
        assert alive == [], "components outlived `dranspose up`"
    finally:
        client.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_up_reports_every_config_mistake(tmp_path):
    bad = tmp_path / "pipeline.yaml"
    bad.write_text(
        "workers:\n  class: src.worker:W\n  count: 0\n"
        "ingesters:\n  - {stream: xrd, upstream: 'ftp://x'}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "dranspose", "up", "-c", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "pipeline.yaml: 3 problem(s)" in result.stderr
    assert "reducer: Field required" in result.stderr
    assert "workers.count" in result.stderr and "ingesters.0.upstream" in result.stderr
    assert "Traceback" not in result.stderr


def test_ingester_protocols_reach_the_ingester_command_lines():
    from dranspose.tools.up import commands, load_config

    config = load_config(
        None,
        {
            "workers.class": "src.worker:W",
            "reducer.class": "src.reducer:R",
            "ingesters": [
                {"stream": "xrd", "upstream": "tcp://det:9999"},
                {"stream": "pc", "upstream": "tcp://panda:8889", "protocol": "positioncap"},
                {"stream": "scan", "upstream": "http://0.0.0.0:5010", "protocol": "sardana"},
            ],
        },
    )
    lines = {
        cmd[cmd.index("--stream") + 1]: cmd for cmd in commands(config) if cmd[0] == "ingester"
    }
    assert lines["xrd"][lines["xrd"].index("--protocol") + 1] == "stins"
    assert lines["pc"][lines["pc"].index("--protocol") + 1] == "positioncap"
    assert lines["scan"][lines["scan"].index("--upstream") + 1] == "http://0.0.0.0:5010"


def test_retry_lost_in_the_yaml_reaches_the_controller(tmp_path):
    from dranspose.tools.up import commands, load_config

    path = tmp_path / "pipeline.yaml"
    path.write_text(
        "controller: {retry_lost: true}\nworkers: {class: 'src.worker:W'}\n"
        "reducer: {class: 'src.reducer:R'}\n"
    )
    assert "--retry-lost" in commands(load_config(str(path), {}))[0]
    path.write_text("workers: {class: 'src.worker:W'}\nreducer: {class: 'src.reducer:R'}\n")
    assert "--retry-lost" not in commands(load_config(str(path), {}))[0]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("pc:nosuch=tcp://panda:8889", "unknown protocol 'nosuch'; known:"),
        ("scan:sardana=tcp://0.0.0.0:5010", "protocol sardana listens for HTTP posts"),
        ("xrd=http://det:9999", "protocol stins reads a PULL upstream, not the HTTP address"),
    ],
)
def test_up_refuses_a_protocol_that_does_not_fit_its_upstream(tmp_path, spec, message):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dranspose",
            "up",
            "-w",
            "src.worker:W",
            "-r",
            "src.reducer:R",
            "-i",
            spec,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "ingesters.0" in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr

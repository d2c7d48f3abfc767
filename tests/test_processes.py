"""Every component as its own process, started with the documented commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import httpx
import numpy as np
import pytest
import zmq

from dranspose.capture import read_capture
from dranspose.local_redis import PrivateRedis
from dranspose.triggermap import TriggerMap
from tests.conftest import XRD_CAPTURE
from tests.test_tutorial_example import expected_reduced
from tests.test_replay_http import free_port


@pytest.fixture
def redis_url():
    with PrivateRedis() as server:
        yield server.url


class Processes:
    def __init__(self, cwd, redis_url):
        self.cwd = cwd
        self.env = {**os.environ, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "dranspose", *args], cwd=self.cwd,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached within {timeout} s")


def test_tutorial_pipeline_as_processes(payload_dir, redis_url):
    procs = Processes(payload_dir, redis_url)
    api, upstream = free_port(), free_port()
    ctx = zmq.Context()
    source = ctx.socket(zmq.PUSH)
    source.bind(f"tcp://127.0.0.1:{upstream}")
    try:
        procs.start("controller", "--host", "127.0.0.1", "--port", str(api))
        for i in range(2):
            procs.start("worker", "--class", "src.worker:TestWorker", "--name", f"w{i}")
        procs.start("reducer", "--class", "src.reducer:TestReducer",
                    "--worker-class", "src.worker:TestWorker", "--port", str(free_port()))
        procs.start("ingester", "--stream", "xrd", "--upstream", f"tcp://127.0.0.1:{upstream}")
        client = httpx.Client(base_url=f"http://127.0.0.1:{api}", timeout=10)
        wait_until(lambda: len(client.get("/api/v1/config").json()) >= 5, 60, "registration")

        second = procs.start("controller", "--host", "127.0.0.1", "--port", str(free_port()))
        assert second.wait(30) == 2
        assert "another controller" in second.stderr.read()

        request = TriggerMap.simple(["xrd"], 9).request.model_dump(mode="json")
        response = client.post("/api/v1/sequence", content=json.dumps(request))
        assert response.status_code == 200, response.text
        for message in read_capture(XRD_CAPTURE):
            source.send_multipart(message.streams["xrd"].frames)
        wait_until(lambda: client.get("/api/v1/status").json()["finished"], 60, "scan end")
        progress = client.get("/api/v1/progress").json()
        assert progress["completed"] == 11
        with h5py.File(payload_dir / "output" / "xrd_processed.h5") as fh:
            np.testing.assert_allclose(fh["reduced"][:], expected_reduced(2, 8), rtol=1e-6)
    finally:
        source.close(linger=0)
        ctx.term()
        procs.stop_all()

"""A network cut between hosts: one worker's link goes down mid-scan, then comes back.

Four network namespaces on one bridge stand for four hosts: ``core`` (Redis, controller,
reducer), ``ingest`` (the ingester and a synthetic detector), ``w0`` and ``w1`` (one worker
each). Every component advertises its host's address, as on a real network. Needs root; skips
with the reason elsewhere (``tests/test_fault_stall.py`` covers the same logic everywhere with a
stopped process instead of a cut cable).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import redis

from dranspose.core.triggermap import TriggerMap
from dranspose.io.local_redis import find_redis_server
from tests import netlab
from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parent.parent
API_PORT, REDIS_PORT, DATA_PORT, UPSTREAM_PORT = 5000, 6379, 7000, 9999
"""Fixed ports are free by construction: every host is a fresh namespace of its own."""

_reason = netlab.unavailable()
pytestmark = pytest.mark.skipif(_reason is not None, reason=f"network namespaces: {_reason}")


class Cluster:
    """The pipeline spread over the lab's hosts; ``api`` talks to the controller."""

    def __init__(self, lab: netlab.NetLab, workdir: Path) -> None:
        self.lab = lab
        self.workdir = workdir
        self.results = workdir / "scans.jsonl"
        core = lab.address("core")
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "REDIS_URL": f"redis://{core}:{REDIS_PORT}/0",
            "COUNTING_REDUCER_OUT": str(self.results),
            "SLOW_WORKER_SECONDS": "0.02",
        }
        self.api = httpx.Client(base_url=f"http://{core}:{API_PORT}", timeout=5)

    def dranspose(self, host: str, *args: str) -> subprocess.Popen[str]:
        with open(self.workdir / f"{host}-{args[0]}.log", "a") as log:  # the child keeps a copy
            return self.lab.start(
                host,
                [sys.executable, "-m", "dranspose", *args],
                self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start(self) -> None:
        lab = self.lab
        lab.start(
            "core",
            [
                find_redis_server(),
                "--port",
                str(REDIS_PORT),
                "--bind",
                "0.0.0.0",
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            self.env,
            stdout=subprocess.DEVNULL,
        )
        ping = redis.Redis(host=lab.address("core"), port=REDIS_PORT, socket_timeout=1)
        wait_until(lambda: _pings(ping), 20, "Redis reachable across the bridge")
        self.dranspose("core", "controller", "--host", "0.0.0.0", "--port", str(API_PORT))
        self.dranspose(
            "core",
            "reducer",
            "--class",
            "tests.payloads.slow:CountingReducer",
            "--advertise",
            lab.address("core"),
            "--data-port",
            str(DATA_PORT),
        )
        for name in ("w0", "w1"):
            self.dranspose(
                name,
                "worker",
                "--class",
                "tests.payloads.slow:SlowWorker",
                "--name",
                name,
                "--advertise",
                lab.address(name),
                "--data-port",
                str(DATA_PORT),
            )
        self.dranspose(
            "ingest",
            "ingester",
            "--stream",
            "det",
            "--upstream",
            f"tcp://127.0.0.1:{UPSTREAM_PORT}",
        )
        wait_until(
            lambda: len(self.api.get("/api/v1/config").json()["components"]) >= 5,
            60,
            "registration",
        )

    def scan(self, events: int) -> dict:
        request = TriggerMap.simple(["det"], events).request.model_dump(mode="json")
        response = self.api.post("/api/v1/sequence", content=json.dumps(request))
        assert response.status_code == 200, response.text
        self.dranspose(
            "ingest",
            "source",
            "--bind",
            f"tcp://127.0.0.1:{UPSTREAM_PORT}",
            "--frames",
            str(events),
        )
        record = self.api.get("/api/v1/sequence").json()
        assert record["scan_id"] == response.json()  # POST answers the id itself
        return record

    def finished(self) -> bool:
        return self.api.get("/api/v1/status").json()["finished"]

    def progress(self) -> dict:
        return self.api.get("/api/v1/progress").json()

    def completed_by(self, worker: str) -> int:
        return self.api.get("/api/v1/load").json().get(worker, {}).get("completed", 0)

    def worker_idle(self, worker: str) -> bool:
        return any(
            c["name"] == worker and c["state"] == "idle"
            for c in self.api.get("/api/v1/config").json()["components"]
        )


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    """The pipeline on four hosts; each component's output is in ``tmp_path/HOST-COMMAND.log``."""
    with netlab.NetLab(["core", "ingest", "w0", "w1"]) as lab:
        cluster = Cluster(lab, tmp_path)
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.api.close()
            lab.restore("w0")  # a cut worker stops cleanly only once it reaches Redis again


def test_a_cut_worker_link_loses_only_its_events_and_the_next_scan_completes(cluster):
    n = 300
    cluster.scan(n)
    wait_until(
        lambda: cluster.completed_by("w0") > 5 and cluster.completed_by("w1") > 5,
        60,
        "both workers busy",
    )
    cluster.lab.cut("w0")
    wait_until(cluster.finished, 60, "scan end (with the reducer's finish)")

    progress = cluster.progress()
    assert progress["total"] == n + 2
    assert progress["completed"] + len(progress["failed"]) + len(progress["lost"]) == n + 2
    assert progress["lost"], "the cut worker held unconfirmed events"
    assert all(progress["lost_reason"][str(e)] == "worker w0 died" for e in progress["lost"])
    assert json.loads(cluster.results.read_text().splitlines()[-1])  # the reducer ran finish

    cluster.lab.restore("w0")
    wait_until(lambda: cluster.worker_idle("w0"), 60, "w0 back and out of the old scan")
    assert "w0" in cluster.scan(30)["workers"]
    wait_until(cluster.finished, 60, "second scan end")
    progress = cluster.progress()
    assert progress["completed"] == 32 and progress["lost"] == []
    assert cluster.completed_by("w0") >= 2  # it took part: at least the start and end events

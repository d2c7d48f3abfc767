"""Fault injection with real processes: kill -9 workers, ingesters, the reducer, restart Redis
(the controller killed mid-scan: tests/test_controller_restart.py, with this FaultPipeline). Each
case ends with the numbers reconciled (total = completed + failed + lost, every lost event with
its reason) and the system usable for a next scan that completes in full.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest

from dranspose.core.triggermap import TriggerMap
from dranspose.io.local_redis import PrivateRedis
from dranspose.tools.source import StinsSource
from tests.ports import free_port
from tests.support.processes import Processes, wait_until

ROOT = Path(__file__).resolve().parent.parent
SLOW = "tests.payloads.slow"


class FaultPipeline:
    """Controller, workers, reducer and one ingester as processes, and a source to feed a scan."""

    def __init__(
        self,
        tmp_path: Path,
        redis_url: str,
        workers: int = 2,
        env: Optional[dict[str, str]] = None,
        controller_args: tuple[str, ...] = (),
    ) -> None:
        self.out = tmp_path / "scans.jsonl"
        self.procs = Processes(tmp_path, redis_url)
        self.procs.env.update(
            {
                "PYTHONPATH": str(ROOT),
                "COUNTING_REDUCER_OUT": str(self.out),
                "SLOW_WORKER_SECONDS": "0.02",
                **(env or {}),
            }
        )
        self.api, self.upstream = free_port(), free_port()
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.api}", timeout=10)
        self.controller = self.start_controller(*controller_args)
        self.workers = {f"w{i}": self.start_worker(f"w{i}") for i in range(workers)}
        self.reducer = self.start_reducer()
        self.ingester = self.start_ingester()
        self.wait_components(workers=workers)

    def start_controller(self, *extra: str) -> subprocess.Popen:
        return self.procs.start(
            "controller", "--host", "127.0.0.1", "--port", str(self.api), *extra
        )

    def start_worker(self, name: str) -> subprocess.Popen:
        return self.procs.start("worker", "--class", f"{SLOW}:SlowWorker", "--name", name)

    def start_reducer(self) -> subprocess.Popen:
        return self.procs.start(
            "reducer", "--class", f"{SLOW}:CountingReducer", "--port", str(free_port())
        )

    def start_ingester(self) -> subprocess.Popen:
        return self.procs.start(
            "ingester", "--stream", "det", "--upstream", f"tcp://127.0.0.1:{self.upstream}"
        )

    def config(self) -> list[dict[str, Any]]:
        response = self.client.get("/api/v1/config")
        if response.status_code == 503:  # Redis is away: the controller says so, and nothing is up
            assert "Redis" in response.json()["detail"]
            return []
        return response.json()["components"]

    def wait_components(self, workers: int, timeout: float = 60) -> None:
        def ready() -> bool:
            kinds = [c["kind"] for c in self.config()]
            return kinds.count("worker") == workers and "reducer" in kinds and "ingester" in kinds

        wait_until(ready, timeout, f"{workers} workers, a reducer and an ingester registered")

    def start_scan(self, n: int) -> dict[str, Any]:
        request = TriggerMap.simple(["det"], n).request.model_dump(mode="json")
        response = self.client.post("/api/v1/sequence", content=json.dumps(request))
        assert response.status_code == 200, response.text
        record = self.client.get("/api/v1/sequence").json()
        assert record["scan_id"] == response.json()
        return record

    def source(self, n: int) -> StinsSource:
        return StinsSource(f"tcp://127.0.0.1:{self.upstream}", frames=n)

    def completed_by(self, worker: str) -> int:
        return self.client.get("/api/v1/load").json().get(worker, {}).get("completed", 0)

    def wait_busy(self, workers: list[str], at_least: int = 5) -> None:
        wait_until(
            lambda: all(self.completed_by(w) >= at_least for w in workers),
            60,
            f"workers {workers} busy",
        )

    def wait_finished(self, timeout: float = 60) -> dict[str, Any]:
        try:
            wait_until(
                lambda: self.client.get("/api/v1/status").json()["finished"], timeout, "scan end"
            )
        except TimeoutError as exc:  # say where it stands
            raise TimeoutError(f"{exc}: {self.client.get('/api/v1/status').text}") from None
        return self.client.get("/api/v1/progress").json()

    def reduced_events(self) -> set[int]:
        """Events whose results the reducer received in the last scan it finished."""
        return set(json.loads(self.out.read_text().splitlines()[-1]))

    def run_full_scan(self, n: int = 30) -> None:
        """A scan after the fault: every event completes and reaches the reducer."""
        finished_before = len(self.out.read_text().splitlines()) if self.out.exists() else 0
        self.start_scan(n)
        with self.source(n):
            progress = self.wait_finished()
        assert progress["completed"] == n + 2, progress
        assert progress["lost"] == [] and progress["failed"] == []
        wait_until(
            lambda: len(self.out.read_text().splitlines()) > finished_before,
            10,
            "the reducer's finish",
        )
        assert self.reduced_events() == set(range(n + 2))

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self.procs.procs)

    def close(self) -> None:
        self.client.close()
        self.procs.stop_all()


def assert_reconciled(progress: dict[str, Any], total: int) -> set[int]:
    """total = completed + failed + lost, and every lost event has its reason; returns lost."""
    failed = {f["event_number"] for f in progress["failed"]}
    lost = set(progress["lost"])
    assert progress["total"] == total
    assert progress["completed"] + len(failed) + len(lost) == total, progress
    assert lost == {int(e) for e in progress["lost_reason"]}
    return lost


@pytest.fixture
def redis_server():
    with PrivateRedis() as server:
        yield server


@pytest.fixture
def make_pipeline(tmp_path, redis_server):
    made: list[FaultPipeline] = []

    def make(**kwargs: Any) -> FaultPipeline:
        made.append(FaultPipeline(tmp_path, redis_server.url, **kwargs))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.close()


def test_two_of_three_workers_killed_the_survivor_finishes_the_scan(make_pipeline):
    p = make_pipeline(workers=3)
    n = 300
    p.start_scan(n)
    with p.source(n) as source:
        p.wait_busy(["w0", "w1", "w2"])
        p.workers["w0"].send_signal(signal.SIGKILL)
        p.workers["w1"].send_signal(signal.SIGKILL)
        progress = p.wait_finished()
        assert source.wait_done(10)
    lost = assert_reconciled(progress, n + 2)
    assert lost, "the killed workers held unconfirmed events"
    reasons = set(progress["lost_reason"].values())
    assert reasons <= {"worker w0 died", "worker w1 died"}
    assert progress["aborted"] is None
    # the survivor did the rest: every event not lost reached the reducer
    assert set(range(n + 2)) - lost <= p.reduced_events()
    # and the reducer's finish saw the same account in context["scan_summary"]
    summary = json.loads(Path(f"{p.out}.summary").read_text().splitlines()[-1])
    assert summary["final"] and set(summary["lost"]) == lost
    assert summary["completed"] == progress["completed"]
    p.workers["w0"] = p.start_worker("w0")
    p.wait_components(workers=2)  # w0 again and w2
    p.run_full_scan()


@pytest.mark.parametrize("when", ["early", "late"])
def test_with_retry_lost_a_killed_workers_events_are_redelivered(make_pipeline, when):
    """At-least-once for a dead worker's events: every result arrives, flagged redelivered.

    Killed late, the survivor has already processed the scan's last event when the death is
    noticed: it and the ingester must still be there for the re-deliveries.
    """
    p = make_pipeline(workers=2, controller_args=("--retry-lost",))
    n = 300 if when == "early" else 60
    assert p.start_scan(n)["retry_lost"] is True
    with p.source(n):
        p.wait_busy(["w0", "w1"], at_least=2)
        if when == "late":
            # w0 stops with its queue held; w1 runs the rest, the last event included, well
            # within the 3 s before w0's silence counts as death
            p.workers["w0"].send_signal(signal.SIGSTOP)
            time.sleep(2.0)
        p.workers["w0"].send_signal(signal.SIGKILL)
        progress = p.wait_finished()
    assert progress["lost"] == [] and progress["failed"] == []
    assert progress["completed"] == n + 2
    assert progress["redelivered"], "w0 held unfinished events when it died"
    wait_until(lambda: p.out.exists(), 10, "the reducer's finish")
    assert p.reduced_events() == set(range(n + 2))
    flagged = set(json.loads(Path(f"{p.out}.redelivered").read_text().splitlines()[-1]))
    assert flagged == set(progress["redelivered"])
    p.run_full_scan()


def test_worker_killed_while_the_reducer_is_slow(make_pipeline):
    p = make_pipeline(
        workers=2, env={"SLOW_REDUCER_SECONDS": "0.01", "SLOW_WORKER_SECONDS": "0.005"}
    )
    n = 300
    p.start_scan(n)
    with p.source(n):
        p.wait_busy(["w0", "w1"])
        p.workers["w0"].send_signal(signal.SIGKILL)
        progress = p.wait_finished(timeout=90)
    lost = assert_reconciled(progress, n + 2)
    assert all(reason == "worker w0 died" for reason in progress["lost_reason"].values())
    # the slow reducer still folded every result the survivor sent
    assert set(range(n + 2)) - lost <= p.reduced_events()


def test_ingester_killed_and_restarted_mid_scan_aborts_the_scan(make_pipeline):
    p = make_pipeline(workers=2)
    n = 300
    p.start_scan(n)
    with p.source(n):
        p.wait_busy(["w0", "w1"])
        p.ingester.send_signal(signal.SIGKILL)
        p.ingester = p.start_ingester()  # back at once, under the same name
        progress = p.wait_finished()
    lost = assert_reconciled(progress, n + 2)
    assert (
        "ingester det-ingester (stream det) was restarted" in progress["aborted"]
        or "ingester det-ingester (stream det) died" in progress["aborted"]
    )
    assert lost and progress["completed"] > 0
    assert all(
        r.startswith("scan aborted: ingester det-ingester")
        for r in progress["lost_reason"].values()
    )
    # completed events really were processed (their results reached the reducer)
    assert set(range(n + 2)) - lost <= p.reduced_events() | {n + 1}
    p.run_full_scan()


def test_reducer_killed_and_restarted_between_scans(make_pipeline):
    p = make_pipeline(workers=2)
    p.run_full_scan(20)
    p.reducer.send_signal(signal.SIGKILL)
    p.reducer.wait(10)
    p.reducer = p.start_reducer()
    wait_until(
        lambda: any(c["kind"] == "reducer" and c["pid"] == p.reducer.pid for c in p.config()),
        30,
        "the new reducer registered",
    )
    p.run_full_scan(40)


def test_redis_restarted_between_scans(make_pipeline, redis_server, tmp_path):
    """Components reconnect by themselves; the controller puts the parameter values back."""
    (tmp_path / "params.json").write_text(json.dumps({"threshold": "7"}))
    p = make_pipeline(workers=2, controller_args=("--parameters", str(tmp_path / "params.json")))
    p.run_full_scan(20)
    before = p.client.get("/api/v1/parameter/threshold")
    assert before.status_code == 200 and before.content == b"7"
    port = redis_server.port
    redis_server.stop()
    time.sleep(1.0)  # every component notices: heartbeats fail
    restarted = PrivateRedis(port=port).start()
    try:
        p.wait_components(workers=2, timeout=30)
        assert p.alive(), "a component exited during the Redis outage"
        wait_until(
            lambda: p.client.get("/api/v1/parameter/threshold").status_code == 200,
            10,
            "the parameter value restored",
        )
        assert p.client.get("/api/v1/parameter/threshold").content == b"7"
        p.run_full_scan(40)
        assert p.alive()
    finally:
        p.close()
        restarted.stop()

"""A scan survives its controller (issue 27): SIGKILL the controller at several points of a
scan, start a successor, and the scan completes as if nothing happened.

Every component is its own process (``tests/test_faults.FaultPipeline``). Each case checks
``completed == total`` with nothing lost or failed, that the reducer received exactly what an
uninterrupted scan of the same length gives it (no event missing, none processed twice), that its
``finish`` ran once with the full account, and that the progress says the scan was resumed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dranspose.io.local_redis import PrivateRedis
from tests.ports import free_port
from tests.support.controller_restart import (
    kill_controller,
    published_batches,
    restart_controller,
    wait_progress,
    wait_resumed,
)
from tests.test_faults import FaultPipeline

N = 200


@pytest.fixture
def pipeline(tmp_path):
    with PrivateRedis() as server:
        made: list[FaultPipeline] = []

        def make(**env: str) -> FaultPipeline:
            made.append(FaultPipeline(tmp_path, server.url, workers=2, env=env))
            return made[-1]

        yield make
        for p in made:
            p.close()


def _finishes(p: FaultPipeline) -> list[str]:
    return p.out.read_text().splitlines() if p.out.exists() else []


def _uninterrupted(p: FaultPipeline) -> list[int]:
    """What the reducer gets from a scan of N events that nothing interrupts."""
    p.start_scan(N)
    with p.source(N):
        assert p.wait_finished()["completed"] == N + 2
    wait_until_finishes(p, 1)
    return json.loads(_finishes(p)[-1])


def wait_until_finishes(p: FaultPipeline, count: int) -> None:
    deadline = time.monotonic() + 20
    while len(_finishes(p)) < count:
        assert time.monotonic() < deadline, "the reducer's finish did not run"
        time.sleep(0.05)


def _assert_as_uninterrupted(p: FaultPipeline, baseline: list[int], finishes: int) -> None:
    progress = p.wait_finished(timeout=90)
    assert progress["completed"] == progress["total"] == N + 2, progress
    assert progress["lost"] == [] and progress["failed"] == [] and progress["aborted"] is None
    assert progress["resumed"] == 1 and progress["resumed_at"] > 0
    wait_until_finishes(p, finishes)
    time.sleep(0.5)  # a second finish would come now
    lines = _finishes(p)
    assert len(lines) == finishes, "the reducer's finish ran more than once"
    assert json.loads(lines[-1]) == baseline  # every result once: nothing lost, none twice
    summary = json.loads(Path(f"{p.out}.summary").read_text().splitlines()[-1])
    assert summary["final"] and summary["completed"] == N + 2 and summary["lost"] == []


def _kill_before_the_first_assignment(p: FaultPipeline) -> None:
    # workers paused (briefly: their registry entries live 3 s) cannot ask for events
    for worker in p.workers.values():
        worker.send_signal(signal.SIGSTOP)
    try:
        scan_id = p.start_scan(N)["scan_id"]
        kill_controller(p)
    finally:
        for worker in p.workers.values():
            worker.send_signal(signal.SIGCONT)
    assert published_batches(p.procs.env["REDIS_URL"], scan_id) == 0


KILL_POINTS = {
    "mid-scan": lambda p: wait_progress(p, lambda s: s["completed"] > 40, "40 events completed"),
    "all-released": lambda p: wait_progress(
        p,
        lambda s: s["last_assigned"] == N + 2 and s["completed"] < N + 2,
        "every event released, not all completed",
    ),
    "reducer-finishing": lambda p: wait_progress(
        p, lambda s: s["completed"] == N + 2 and not s["reducer_finished"], "the reducer finishing"
    ),
}


@pytest.mark.parametrize(
    "point, after",
    [
        ("before-first-assignment", 1.0),
        ("mid-scan", 1.0),
        ("all-released", 1.0),
        ("reducer-finishing", 1.0),
        ("mid-scan", 20.0),
    ],
)
def test_the_controller_killed_and_restarted_the_scan_completes(pipeline, point, after):
    # a slow reducer makes "finished, the reducer still folding" a window of seconds
    env = {"SLOW_REDUCER_SECONDS": "0.03"} if point == "reducer-finishing" else {}
    p = pipeline(**env)
    baseline = _uninterrupted(p)
    if point == "before-first-assignment":
        _kill_before_the_first_assignment(p)
        restart_controller(p, after)
        wait_resumed(p)
        with p.source(N):
            _assert_as_uninterrupted(p, baseline, 2)
    else:
        p.start_scan(N)
        with p.source(N):
            KILL_POINTS[point](p)
            kill_controller(p)
            restart_controller(p, after)
            _assert_as_uninterrupted(p, baseline, 2)
    p.run_full_scan()  # and the next scan is an ordinary one


def test_two_successors_race_exactly_one_resumes(pipeline):
    p = pipeline()
    p.start_scan(N)
    other_port = free_port()
    with p.source(N):
        KILL_POINTS["mid-scan"](p)
        kill_controller(p)
        time.sleep(1.0)
        first = p.start_controller("--takeover-wait", "8")
        second = p.procs.start(
            "controller", "--host", "127.0.0.1", "--port", str(other_port), "--takeover-wait", "8"
        )
        outcomes = _race(first, second)
        winner, loser = sorted(outcomes, key=lambda o: o[1] is not None)
        assert loser[1] is not None and loser[1] != 0, "both successors took the scan over"
        assert "another controller" in loser[2] and "is active" in loser[2]
        if winner[0] is second:
            p.client = httpx.Client(base_url=f"http://127.0.0.1:{other_port}", timeout=10)
        p.controller = winner[0]
        progress = p.wait_finished(timeout=90)
    assert progress["completed"] == N + 2 and progress["lost"] == []
    assert progress["resumed"] == 1  # one successor took it over, once


def _race(*procs: subprocess.Popen) -> list[tuple[subprocess.Popen, Any, str]]:
    """Wait until one of the successors gave up (after its takeover wait); (process, its exit
    code or None while it runs, what it wrote to stderr if it exited)."""
    deadline = time.monotonic() + 30
    while all(proc.poll() is None for proc in procs):
        assert time.monotonic() < deadline, "neither successor gave up"
        time.sleep(0.1)
    time.sleep(0.5)
    return [
        (proc, proc.poll(), proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        for proc in procs
    ]

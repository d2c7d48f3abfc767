"""What ingesters, workers and the reducer do while no controller is there (issue 27, items 2, 4
and 5): they keep their part of a running scan for ``--controller-grace`` seconds, so that a
controller back within it finds every component still in the scan; past it each aborts its part
with the reason instead of waiting for ever; and a Redis restart mid-scan stays an abort with a
clear reason in every component's log, after which the next scan runs in full.

Real processes, a real Redis, real signals: the controller is SIGKILLed (not restarted) or
SIGSTOPped (its lock expires, then it comes back and takes it again).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
import redis

from dranspose.cli.main import build_parser
from dranspose.cli.settings import Settings
from dranspose.core.coordination import ComponentInfo, ComponentKind
from dranspose.io.local_redis import PrivateRedis
from dranspose.io.store import Key, Store
from dranspose.runtime.component import HEARTBEAT_SECONDS, Component
from tests.support.processes import wait_until
from tests.test_faults import FaultPipeline, assert_reconciled

PREFIX = "dranspose"
LOCK = f"{PREFIX}:{Key.CONTROLLER_LOCK}"


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    with PrivateRedis() as server:
        yield server


@pytest.fixture
def pipelines(tmp_path: Path, redis_server: PrivateRedis) -> Iterator[Any]:
    made: list[FaultPipeline] = []

    def make(**kwargs: Any) -> FaultPipeline:
        made.append(FaultPipeline(tmp_path, redis_server.url, **kwargs))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.close()


def states(client: redis.Redis) -> dict[str, str]:
    """name -> state of every registered ingester, worker and reducer, read from Redis itself
    (the controller that would serve /api/v1/config is dead)."""
    out = {}
    for key in client.scan_iter(match=f"{PREFIX}:{Key.COMPONENT}:*"):
        raw = client.get(key)
        if raw is not None:
            info = json.loads(raw)
            if info["kind"] != "controller":
                out[info["name"]] = info["state"]
    return out


def stderr_of(proc: Any) -> str:
    """What a stopped process logged (log lines go to stdout, tracebacks to stderr)."""
    return proc.stdout.getvalue() + proc.stderr.getvalue()


# -- the grace, in one process -------------------------------------------------------------


class Idle(Component):
    """A component that only heartbeats (the watch of the controller lock is the heartbeat's)."""

    async def main(self) -> None:
        await self.until_stopped()


async def _watch(url: str, grace: float) -> list[Any]:
    store = Store(url, PREFIX)
    comp = Idle(store, ComponentInfo(kind=ComponentKind.worker, name="w"), controller_grace=grace)
    seen: list[Any] = []
    task = asyncio.create_task(comp.serve())
    try:
        await asyncio.sleep(2 * HEARTBEAT_SECONDS)
        seen.append(await comp.controller_missing())  # never saw a controller: no verdict
        assert await store.acquire_controller_lock("c1", 30) is None
        while comp.controller_holder != "c1":
            await asyncio.sleep(0.05)
        await store.release_controller_lock("c1")
        while not comp.controller_lost:
            await asyncio.sleep(0.05)
        lost_at = time.monotonic()
        seen.append(await comp.controller_missing())  # within the grace
        while (reason := await comp.controller_missing()) is None:
            await asyncio.sleep(0.02)
        seen.append((reason, time.monotonic() - lost_at))
        assert await store.acquire_controller_lock("c2", 30) is None  # a successor
        seen.append(await comp.controller_missing())  # read afresh: the successor counts
        seen.append(comp.controller_lost)
    finally:
        comp.stop()
        await task
        await store.close()
    return seen


def test_the_grace_counts_from_the_last_sight_of_a_controller(fresh_redis_url):
    never, within, (reason, after), successor, lost = asyncio.run(_watch(fresh_redis_url, 1.0))
    assert never is None and within is None
    assert reason == "no controller for 1 s"
    # the heartbeat saw the holder last at most one beat before it saw it gone
    assert 1.0 - HEARTBEAT_SECONDS - 0.1 <= after <= 1.0 + 0.2
    assert successor is None and lost is False


def test_controller_grace_option_and_variable(monkeypatch):
    for command in (
        ["worker", "--class", "m:W"],
        ["ingester", "--stream", "s", "--upstream", "tcp://h:1"],
        ["reducer", "--class", "m:R"],
        ["http_ingester", "-c", "x", "-n", "s"],
    ):
        assert build_parser(Settings()).parse_args(command).controller_grace == 60.0
        args = build_parser(Settings()).parse_args([*command, "--controller-grace", "2.5"])
        assert args.controller_grace == 2.5
    monkeypatch.setenv("DRANSPOSE_CONTROLLER_GRACE", "90")
    assert build_parser().parse_args(["worker"]).controller_grace == 90.0
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["worker", "--controller-grace", "0"])
    assert exc.value.code == 2


# -- processes -------------------------------------------------------------------------------


def test_without_a_controller_every_component_aborts_its_part_after_the_grace(
    pipelines, redis_server
):
    """SIGKILL of the controller mid-scan, no successor: nothing hangs. Each component aborts
    its part with the reason once the lock expired and the grace (3 s) passed; the reducer runs
    ``finish`` with that reason in its summary; a new controller then runs a scan in full."""
    grace = 3.0
    p = pipelines(workers=2, env={"DRANSPOSE_CONTROLLER_GRACE": str(grace)})
    client = redis.Redis.from_url(redis_server.url)
    n = 400
    scan_id = p.start_scan(n)["scan_id"]
    with p.source(n):
        p.wait_busy(["w0", "w1"])
        expires = time.monotonic() + client.pttl(LOCK) / 1000  # when the lock goes by itself
        p.controller.send_signal(signal.SIGKILL)
        p.controller.wait(10)
        aborted = wait_until(
            lambda: set(states(client).values()) == {"aborted"} and time.monotonic(),
            30,
            "every component aborted its part",
        )
    names = set(states(client))
    assert names == {"w0", "w1", "det-ingester", "reducer"}
    # not before the grace, and within the grace plus one heartbeat to see the lock gone, the
    # reducer's look every second, and a heartbeat to publish the state
    waited = aborted - expires
    assert grace - HEARTBEAT_SECONDS - 0.1 <= waited <= grace + 2 * HEARTBEAT_SECONDS + 1.5, waited
    components = (*p.workers.values(), p.ingester, p.reducer)
    assert all(proc.poll() is None for proc in components), "a component exited"
    wait_until(lambda: p.out.exists(), 10, "the reducer's finish")
    summary = json.loads(Path(f"{p.out}.summary").read_text().splitlines()[-1])
    assert summary["aborted"] == "no controller for 3 s" and summary["final"] is False
    reduced = json.loads(p.out.read_text().splitlines()[-1])
    # each event once, but the first, which goes to every worker; the scan really was cut short
    twice = {e for e, count in Counter(reduced).items() if count > 1}
    assert twice <= {0} and set(reduced) < set(range(n + 2))

    p.controller = p.start_controller()  # the lock has expired: no --takeover-wait needed
    p.wait_components(workers=2)
    # it came too late to resume: the scan its components left is closed as aborted, saying so
    closed = wait_until(
        lambda: (r := p.client.get("/api/v1/progress").json())["aborted"] and r,
        20,
        "the late controller closes the abandoned scan",
    )
    assert closed["scan_id"] == scan_id and "already left it (no controller)" in closed["aborted"]
    p.run_full_scan()
    p.close()
    said = f"aborting its part of scan {scan_id}: no controller for 3 s"
    for proc in components:
        assert said in stderr_of(proc), stderr_of(proc)[-3000:]


def test_a_controller_back_within_the_grace_finds_every_component_in_the_scan(pipelines):
    """The controller stops (SIGSTOP) long enough for its lock to expire, then carries on: the
    components kept their parts meanwhile (grace 20 s) and the scan completes with nothing lost,
    every result in the reducer once."""
    p = pipelines(workers=2, env={"DRANSPOSE_CONTROLLER_GRACE": "20"})
    n = 400
    p.start_scan(n)
    with p.source(n):
        p.wait_busy(["w0", "w1"])
        p.controller.send_signal(signal.SIGSTOP)
        time.sleep(7.0)  # the lock (5 s) expires; the components see no controller
        p.controller.send_signal(signal.SIGCONT)
        progress = p.wait_finished(timeout=60)
    assert progress["completed"] == n + 2, progress
    assert progress["lost"] == [] and progress["failed"] == [] and progress["aborted"] is None
    wait_until(lambda: p.out.exists(), 10, "the reducer's finish")
    reduced = Counter(json.loads(p.out.read_text().splitlines()[-1]))
    # each once, but the first and the last, which go to every worker
    assert reduced == {e: 2 if e in (0, n + 1) else 1 for e in range(n + 2)}
    p.close()
    for proc in (*p.workers.values(), p.ingester, p.reducer):
        err = stderr_of(proc)
        assert "no controller holds the lock" in err and "holds the lock after" in err, err
        assert "aborting its part" not in err


@pytest.mark.expect_errors
def test_redis_restarted_mid_scan_aborts_with_the_reason_everywhere(pipelines, redis_server):
    """A Redis without persistence forgets the scan: the controller aborts it ("Redis
    restarted during the scan"), every event is accounted for, every component says why it left
    the scan, and the next scan runs in full."""
    p = pipelines(workers=2)
    n = 400
    scan_id = p.start_scan(n)["scan_id"]
    with p.source(n):
        p.wait_busy(["w0", "w1"])
        port = redis_server.port
        redis_server.stop()
        restarted = PrivateRedis(port=port).start()
        try:
            progress = p.wait_finished(timeout=60)
            assert progress["scan_id"] == scan_id
            assert progress["aborted"] == "Redis restarted during the scan"
            lost = assert_reconciled(progress, n + 2)
            assert lost and all(
                reason == "scan aborted: Redis restarted during the scan"
                for reason in progress["lost_reason"].values()
            ), progress["lost_reason"]
        except BaseException:
            restarted.stop()
            raise
    try:
        p.wait_components(workers=2, timeout=30)
        p.run_full_scan()
        assert p.alive()
        p.close()
    finally:
        restarted.stop()
    gone = (
        f"leaving scan {scan_id}: its record is gone from Redis",
        f"leaving scan {scan_id}: the controller aborted it: Redis restarted during the scan",
    )
    for proc in (*p.workers.values(), p.ingester):
        assert any(why in stderr_of(proc) for why in gone), stderr_of(proc)[-3000:]
    assert f"scan {scan_id} ended early" in stderr_of(p.reducer), stderr_of(p.reducer)[-3000:]

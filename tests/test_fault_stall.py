"""A worker that stops answering mid-scan (SIGSTOP): the same failure as a network cut, anywhere.

A stopped process neither reads its data socket nor renews its registry entry, which is what the
rest of the system sees of a worker whose link went down. ``tests/test_fault_netns.py`` cuts a
real link between network namespaces where the machine allows it; this test runs everywhere.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import zmq
import zmq.asyncio

from dranspose.core.triggermap import TriggerMap
from dranspose.io.dataplane import Outboxes
from dranspose.tools.source import StinsSource
from tests.ports import free_port
from tests.support.processes import Processes, wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_a_send_to_a_full_queue_gives_up_once_the_peer_left():
    """Outboxes.send returns False instead of waiting forever for a peer nobody reads for."""

    async def scenario() -> tuple[list[bool], float]:
        ctx = zmq.asyncio.Context()
        inbox = ctx.socket(zmq.PULL)  # bound, never read: a stalled worker
        inbox.setsockopt(zmq.RCVHWM, 1)
        port = inbox.bind_to_random_port("tcp://127.0.0.1")
        outboxes = Outboxes(ctx, hwm=1)
        url = f"tcp://127.0.0.1:{port}"
        left_at = time.monotonic() + 0.5  # the controller drops the peer after 0.5 s
        outcomes = []
        started = time.monotonic()
        try:
            for _i in range(50):  # far more than both queues and the socket buffers hold
                delivered = await asyncio.wait_for(
                    outboxes.send(
                        url, [b"x" * 100_000], give_up=lambda: time.monotonic() > left_at
                    ),
                    10,
                )
                outcomes.append(delivered)
                if not delivered:
                    break
            return outcomes, time.monotonic() - started
        finally:
            outboxes.close()
            inbox.close(linger=0)
            ctx.term()

    outcomes, seconds = asyncio.run(scenario())
    assert outcomes[-1] is False and all(outcomes[:-1])
    # gave up once the peer left (0.5 s), not at the 10 s wait_for above: a generous bound
    assert 0.5 <= seconds < 8


def test_a_stalled_worker_is_declared_dead_and_rejoins_the_next_scan(tmp_path, fresh_redis_url):
    """SIGSTOP one of two workers mid-scan: its events are lost, the rest completes; after
    SIGCONT it leaves the old scan and the next scan completes in full, with it."""
    out = tmp_path / "scans.jsonl"
    procs = Processes(tmp_path, fresh_redis_url)
    procs.env.update(
        {"PYTHONPATH": str(ROOT), "COUNTING_REDUCER_OUT": str(out), "SLOW_WORKER_SECONDS": "0.02"}
    )
    api, upstream = free_port(), free_port()
    stalled = None
    try:
        procs.start("controller", "--host", "127.0.0.1", "--port", str(api))
        stalled, _ = [
            procs.start("worker", "--class", "tests.payloads.slow:SlowWorker", "--name", f"w{i}")
            for i in range(2)
        ]
        procs.start(
            "reducer", "--class", "tests.payloads.slow:CountingReducer", "--port", str(free_port())
        )
        procs.start("ingester", "--stream", "det", "--upstream", f"tcp://127.0.0.1:{upstream}")
        client = procs.client(api)
        wait_until(
            lambda: len(client.get("/api/v1/config").json()["components"]) >= 5, 60, "registration"
        )

        n = 300
        request = TriggerMap.simple(["det"], n).request.model_dump(mode="json")
        assert client.post("/api/v1/sequence", content=json.dumps(request)).status_code == 200
        with StinsSource(f"tcp://127.0.0.1:{upstream}", frames=n):
            wait_until(
                lambda: all(
                    client.get("/api/v1/load").json().get(w, {}).get("completed", 0) > 5
                    for w in ("w0", "w1")
                ),
                60,
                "both workers busy",
            )
            stalled.send_signal(signal.SIGSTOP)
            wait_until(
                lambda: client.get("/api/v1/status").json()["finished"],
                60,
                "scan end (with the reducer's finish)",
            )
        progress = client.get("/api/v1/progress").json()
        assert progress["total"] == n + 2
        assert progress["completed"] + len(progress["failed"]) + len(progress["lost"]) == n + 2
        assert progress["lost"], "the stalled worker held unconfirmed events"
        assert all(progress["lost_reason"][str(e)] == "worker w0 died" for e in progress["lost"])
        assert json.loads(out.read_text().splitlines()[-1])  # the reducer ran finish

        stalled.send_signal(signal.SIGCONT)
        wait_until(
            lambda: any(
                c["name"] == "w0" and c["state"] == "idle"
                for c in client.get("/api/v1/config").json()["components"]
            ),
            30,
            "w0 back and out of the old scan",
        )
        request = TriggerMap.simple(["det"], 30).request.model_dump(mode="json")
        response = client.post("/api/v1/sequence", content=json.dumps(request))
        assert response.status_code == 200
        assert "w0" in client.get("/api/v1/sequence").json()["workers"]
        with StinsSource(f"tcp://127.0.0.1:{upstream}", frames=30):
            wait_until(lambda: client.get("/api/v1/status").json()["finished"], 60, "scan 2")
        progress = client.get("/api/v1/progress").json()
        assert progress["completed"] == 32 and progress["lost"] == []
        assert client.get("/api/v1/load").json()["w0"]["completed"] >= 2  # at least start and end
    finally:
        if stalled is not None and stalled.poll() is None:
            stalled.send_signal(signal.SIGCONT)  # a stopped process cannot handle SIGINT
        procs.stop_all()

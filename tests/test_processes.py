"""Every component as its own process, started with the documented commands."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import h5py
import numpy as np
import zmq

from dranspose.core.triggermap import TriggerMap
from dranspose.io.capture import read_capture
from tests.conftest import XRD_CAPTURE
from tests.ports import free_port
from tests.support.processes import Processes, wait_until
from tests.support.tutorial import expected_reduced


def test_tutorial_pipeline_as_processes(payload_dir, fresh_redis_url):
    procs = Processes(payload_dir, fresh_redis_url)
    api, upstream = free_port(), free_port()
    ctx = zmq.Context()
    source = ctx.socket(zmq.PUSH)
    source.bind(f"tcp://127.0.0.1:{upstream}")
    try:
        procs.start("controller", "--host", "127.0.0.1", "--port", str(api))
        for i in range(2):
            procs.start("worker", "--class", "src.worker:TestWorker", "--name", f"w{i}")
        procs.start(
            "reducer",
            "--class",
            "src.reducer:TestReducer",
            "--worker-class",
            "src.worker:TestWorker",
            "--port",
            str(free_port()),
        )
        procs.start("ingester", "--stream", "xrd", "--upstream", f"tcp://127.0.0.1:{upstream}")
        client = procs.client(api)
        wait_until(
            lambda: len(client.get("/api/v1/config").json()["components"]) >= 5, 60, "registration"
        )

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


def test_killed_worker_loses_only_its_events_and_a_new_one_rejoins(tmp_path, fresh_redis_url):
    """kill -9 a worker mid-scan: the scan ends, its unfinished events are reported lost."""
    from dranspose.tools.source import StinsSource

    out = tmp_path / "scans.jsonl"
    procs = Processes(tmp_path, fresh_redis_url)
    procs.env.update(
        {
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            "COUNTING_REDUCER_OUT": str(out),
            "SLOW_WORKER_SECONDS": "0.02",
        }
    )
    api, upstream = free_port(), free_port()
    try:
        procs.start("controller", "--host", "127.0.0.1", "--port", str(api))
        workers = [
            procs.start("worker", "--class", "tests.payloads.slow:SlowWorker", "--name", f"w{i}")
            for i in range(3)
        ]
        procs.start(
            "reducer", "--class", "tests.payloads.slow:CountingReducer", "--port", str(free_port())
        )
        procs.start("ingester", "--stream", "det", "--upstream", f"tcp://127.0.0.1:{upstream}")
        client = procs.client(api)
        wait_until(
            lambda: len(client.get("/api/v1/config").json()["components"]) >= 6, 60, "registration"
        )

        n = 300
        request = TriggerMap.simple(["det"], n).request.model_dump(mode="json")
        assert client.post("/api/v1/sequence", content=json.dumps(request)).status_code == 200
        with StinsSource(f"tcp://127.0.0.1:{upstream}", frames=n) as source:
            # kill a worker that is busy: it has completed events and holds more
            load = wait_until(
                lambda: (
                    lambda l: (  # noqa: E741
                        l
                        if all(l.get(f"w{i}", {}).get("completed", 0) > 5 for i in range(3))
                        else None
                    )
                )(client.get("/api/v1/load").json()),
                60,
                "every worker busy",
            )
            workers[0].send_signal(signal.SIGKILL)
            assert load["w0"]["completed"] < n
            wait_until(lambda: client.get("/api/v1/status").json()["finished"], 60, "scan end")
            assert source.wait_done(10)
        progress = client.get("/api/v1/progress").json()
        total = n + 2
        failed = {f["event_number"] for f in progress["failed"]}
        assert progress["total"] == total
        assert progress["completed"] + len(failed) + len(progress["lost"]) == total
        assert progress["lost"], "the killed worker held unfinished events"
        assert all("w0" in progress["lost_reason"][str(e)] for e in progress["lost"])
        received = set(json.loads(out.read_text().splitlines()[-1]))
        # nothing disappears silently: every event's result reached the reducer or the event is
        # listed as lost (a lost event's result may still have arrived: the worker can die after
        # sending it and before confirming it, so "lost" means "not confirmed")
        assert set(range(total)) <= received | set(progress["lost"]) | failed

        # a restarted worker joins the next scan, which completes in full
        procs.start("worker", "--class", "tests.payloads.slow:SlowWorker", "--name", "w0")
        wait_until(
            lambda: (
                sum(
                    c["kind"] == "worker" for c in client.get("/api/v1/config").json()["components"]
                )
                == 3
            ),
            30,
            "rejoin",
        )
        request = TriggerMap.simple(["det"], 30).request.model_dump(mode="json")
        response = client.post("/api/v1/sequence", content=json.dumps(request))
        assert response.status_code == 200
        assert "w0" in client.get("/api/v1/sequence").json()["workers"]
        with StinsSource(f"tcp://127.0.0.1:{upstream}", frames=30):
            wait_until(lambda: client.get("/api/v1/status").json()["finished"], 60, "scan 2")
        progress = client.get("/api/v1/progress").json()
        assert progress["completed"] == 32 and progress["lost"] == []
    finally:
        procs.stop_all()


def test_one_ingester_serves_two_streams_and_dumps_what_replay_reads(tmp_path, fresh_redis_url):
    from dranspose.tools.replay import run_replay
    from dranspose.tools.source import StinsSource

    out = tmp_path / "scans.jsonl"
    procs = Processes(tmp_path, fresh_redis_url)
    procs.env.update(
        {
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            "COUNTING_REDUCER_OUT": str(out),
            "SLOW_WORKER_SECONDS": "0",
        }
    )
    api, up_a, up_b = free_port(), free_port(), free_port()
    try:
        procs.start("controller", "--host", "127.0.0.1", "--port", str(api))
        procs.start("worker", "--class", "tests.payloads.slow:SlowWorker", "--name", "w0")
        procs.start(
            "reducer", "--class", "tests.payloads.slow:CountingReducer", "--port", str(free_port())
        )
        procs.start(
            "ingester",
            "--stream",
            "a",
            "--upstream",
            f"tcp://127.0.0.1:{up_a}",
            "--stream",
            "b",
            "--upstream",
            f"tcp://127.0.0.1:{up_b}",
            "--dump",
            str(tmp_path / "dump.cbors"),
        )
        client = procs.client(api)
        wait_until(
            lambda: len(client.get("/api/v1/config").json()["components"]) >= 5, 60, "registration"
        )
        request = TriggerMap.simple(["a", "b"], 12).request.model_dump(mode="json")
        assert client.post("/api/v1/sequence", content=json.dumps(request)).status_code == 200
        with (
            StinsSource(f"tcp://127.0.0.1:{up_a}", frames=12, seed=1),
            StinsSource(f"tcp://127.0.0.1:{up_b}", frames=12, seed=2),
        ):
            wait_until(lambda: client.get("/api/v1/status").json()["finished"], 60, "scan end")
        assert client.get("/api/v1/progress").json()["completed"] == 14
    finally:
        procs.stop_all()
    live = json.loads(out.read_text().splitlines()[-1])
    dumps = [tmp_path / "dump-a.cbors", tmp_path / "dump-b.cbors"]
    assert [len(list(read_capture(d))) for d in dumps] == [14, 14]
    out.unlink()
    os.environ["COUNTING_REDUCER_OUT"] = str(out)
    try:
        summary = run_replay(
            "tests.payloads.slow:SlowWorker",
            "tests.payloads.slow:CountingReducer",
            dumps,
            nworkers=1,
            show_progress=False,
        )
    finally:
        del os.environ["COUNTING_REDUCER_OUT"]
    assert summary.ok and summary.events == 14
    assert json.loads(out.read_text().splitlines()[-1]) == live

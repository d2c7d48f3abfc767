"""Metrics and logs across real processes started with the documented commands.

Statistics and log records cross process boundaries through Redis; this runs every component as
its own ``dranspose`` process (as ``dranspose up`` does), one scan of the shipped capture through
the noisy payload, and checks what the controller serves and what the workers print.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import httpx
import pytest
import zmq
from prometheus_client.parser import text_string_to_metric_families

from dranspose.core.triggermap import TriggerMap
from dranspose.io.capture import read_capture
from dranspose.io.local_redis import PrivateRedis
from tests.conftest import ROOT, XRD_CAPTURE, raw_xrd_events
from tests.ports import free_port
from tests.support.processes import Processes, wait_until

WORKERS = ["w0", "w1"]
STRUCTURED = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?P<level>[A-Z]+) "
    r"(?P<component>\S+) (?P<logger>\S+): (?P<message>.*)$"
)


@dataclass
class Run:
    progress: dict
    load: dict
    samples: dict
    logs: list[dict]
    reducer_health: httpx.Response
    worker_stdout: dict[str, str]


def samples_of(text: str) -> dict:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture(scope="module")
def run() -> Run:
    with PrivateRedis() as redis_server:
        procs = Processes(ROOT, redis_server.url)
        api, upstream, reducer_port = free_port(), free_port(), free_port()
        ctx = zmq.Context()
        source = ctx.socket(zmq.PUSH)
        source.bind(f"tcp://127.0.0.1:{upstream}")
        workers = {}
        try:
            procs.start("controller", "--host", "127.0.0.1", "--port", str(api))
            for name in WORKERS:
                workers[name] = procs.start(
                    "worker", "--class", "tests.payloads.noisy:NoisyWorker", "--name", name
                )
            procs.start(
                "reducer",
                "--class",
                "tests.payloads.noisy:ListReducer",
                "--host",
                "127.0.0.1",
                "--port",
                str(reducer_port),
            )
            procs.start("ingester", "--stream", "xrd", "--upstream", f"tcp://127.0.0.1:{upstream}")
            client = procs.client(api)
            wait_until(
                lambda: len(client.get("/api/v1/config").json()["components"]) >= 5,
                60,
                "registration",
            )
            request = TriggerMap.simple(["xrd"], 9).request.model_dump(mode="json")
            response = client.post("/api/v1/sequence", content=json.dumps(request))
            assert response.status_code == 200, response.text
            for message in read_capture(XRD_CAPTURE):
                source.send_multipart(message.streams["xrd"].frames)
            wait_until(lambda: client.get("/api/v1/status").json()["finished"], 60, "scan end")
            progress = client.get("/api/v1/progress").json()
            load = client.get("/api/v1/load").json()
            shares = sum(entry["completed"] for entry in load.values())

            def caught_up() -> bool:
                samples = samples_of(client.get("/metrics").text)
                logged = client.get("/api/v1/logs?level=WARNING&limit=1000").json()
                noisy = [r for r in logged if r["logger"] == "tests.payloads.noisy"]
                return (
                    samples.get(
                        (
                            "dranspose_frames_ingested_total",
                            frozenset({"stream": "xrd", "ingester": "xrd-ingester"}.items()),
                        )
                    )
                    == len(raw_xrd_events())
                    and len(noisy) == shares
                )

            try:
                wait_until(caught_up, 30, "statistics and logs")
            except TimeoutError:
                pass  # the tests show what differs
            samples = samples_of(client.get("/metrics").text)
            logs = client.get("/api/v1/logs?limit=1000").json()
            reducer_health = httpx.get(f"http://127.0.0.1:{reducer_port}/healthz", timeout=10)
        finally:
            source.close(linger=0)
            ctx.term()
            procs.stop_all()
        stdout = {name: proc.stdout.read() for name, proc in workers.items()}
    return Run(progress, load, samples, logs, reducer_health, stdout)


def value(samples: dict, name: str, **labels: str):
    return samples.get((name, frozenset(labels.items())))


def test_metrics_of_processes_equal_progress_and_the_capture(run):
    assert value(run.samples, "dranspose_events_completed_total") == run.progress["completed"]
    assert (
        value(run.samples, "dranspose_events_failed_total")
        == len({f["event_number"] for f in run.progress["failed"]})
        == 3
    )
    sent = raw_xrd_events()
    labels = {"stream": "xrd", "ingester": "xrd-ingester"}
    assert value(run.samples, "dranspose_frames_ingested_total", **labels) == len(sent)
    assert value(run.samples, "dranspose_bytes_ingested_total", **labels) == sum(
        len(f) for _, frames in sent for f in frames
    )


def test_worker_processes_ship_their_payload_records_under_their_names(run):
    for name in WORKERS:
        mine = [
            r for r in run.logs if r["component"] == name and r["logger"] == "tests.payloads.noisy"
        ]
        assert len(mine) == run.load[name]["completed"]


def test_worker_processes_print_structured_lines(run):
    for name in WORKERS:
        lines = [
            STRUCTURED.match(line)
            for line in run.worker_stdout[name].splitlines()
            if not line.startswith("    ")
        ]
        assert lines and all(lines), run.worker_stdout[name]
        noisy = [m for m in lines if m.group("logger") == "tests.payloads.noisy"]
        assert len(noisy) == run.load[name]["completed"]
        assert {(m.group("level"), m.group("component")) for m in noisy} == {("WARNING", name)}


def test_reducer_process_answers_healthz(run):
    assert run.reducer_health.status_code == 200
    assert run.reducer_health.json() == {"status": "ok", "component": "reducer"}

"""Ours answers the original dranspose 0.2.0's REST calls as the original did.

The pipeline is set up like the one ``tests/data/rest-original-0.2.0.json`` was recorded on
(real Redis, controller, reducer serving HTTP, one STINS ingester of stream ``eiger``, two
workers whose class declares one int parameter ``probe_int``, a reducer declaring none); the
calls of ``rest_surface.py`` (a copy of ``../shared/api/rest_surface.py``) record ours, and its
comparison must find nothing but the intended difference: ours refuses ``abc`` for an int (422)
where the original stored it. The ids of ``connected_workers`` (each worker process's random
``service_uuid``) differ from run to run, on the original too: they are compared as ids.

Then what the recording cannot see: the undeclared parameter the calls set reaches the payloads
as raw bytes, our answers parse into the original's ``EnsembleState``, the bare answers' values
are true ones (the hash the controller reports), the payloads' ``state`` carries the original's
fields filled, and ``dump_prefix`` makes the ingester dump the scan, as the original's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from dranspose.io.capture import read_capture
from dranspose.protocol import EnsembleState, WorkerState
from tests.compat import rest_surface
from tests.pipeline import Pipeline
from tests.ports import free_port

RECORDING = Path(__file__).parents[1] / "data" / "rest-original-0.2.0.json"
INTENDED = {"POST /api/v1/parameter/probe_int: status 200 -> 422"}
"""The original stores ``abc`` for an int parameter; ours refuses a value that does not parse."""

PAYLOAD = """
from dranspose.parameters import IntParameter


class ProbeWorker:
    def __init__(self, *args, **kwargs):
        self.state = kwargs.get("state")

    @staticmethod
    def describe_parameters():
        return [IntParameter(name="probe_int")]

    def process_event(self, event, parameters=None, *args, **kwargs):
        seen = parameters["undeclared_x"].data if "undeclared_x" in parameters else None
        return {"undeclared_x": seen, "state": self.state.model_dump(mode="json")}


class ProbeReducer:
    def __init__(self, *args, **kwargs):
        self.publish = {"seen": [], "states": []}

    def process_result(self, result, parameters=None):
        if result.payload is not None:
            self.publish["seen"].append(result.payload["undeclared_x"].decode())
            self.publish["states"].append(result.payload["state"])
            self.publish["reducer_sees"] = parameters["undeclared_x"].data.decode()
"""


def _ids_as_placeholders(shape: Any, key: str = "") -> Any:
    """``connected_workers``' keys (random per process) as one placeholder, elsewhere as is."""
    if isinstance(shape, dict):
        if key == "connected_workers":
            return {"<service_uuid>": next(iter(shape.values()))} if shape else {}
        return {k: _ids_as_placeholders(v, k) for k, v in shape.items()}
    if isinstance(shape, list):
        return [_ids_as_placeholders(v, key) for v in shape]
    return shape


def compare(original: list[dict], ours: list[dict]) -> set[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rest_surface.compare(_ids_as_placeholders(original), _ids_as_placeholders(ours))
    return {line for line in out.getvalue().splitlines() if "calls answer differently" not in line}


@pytest.fixture
def probe_payload(payload_dir: Path) -> Path:
    (payload_dir / "src" / "probe.py").write_text(PAYLOAD)
    return payload_dir


def test_ours_answers_the_original_clients_calls(redis_url, probe_payload):
    reducer_port = free_port()

    async def scenario() -> dict[str, Any]:
        async with Pipeline(
            redis_url,
            "src.probe:ProbeWorker",
            "src.probe:ProbeReducer",
            ["eiger"],
            prefix="rest-surface",
            reducer_http_port=reducer_port,
        ) as pipe:
            controller = f"http://127.0.0.1:{pipe.api_port}"
            reducer = f"http://127.0.0.1:{reducer_port}"
            recorded = await asyncio.to_thread(rest_surface.record, controller, reducer)
            config = (await pipe.client.get("/api/v1/config")).json()
            undeclared = await pipe.client.get("/api/v1/parameter/undeclared_x")
            full = await pipe.client.post(
                "/api/v1/parameter/undeclared_x?full=true", content=b"abc"
            )
            prefix = f"{probe_payload}/dumps-"
            await pipe.client.post("/api/v1/parameter/dump_prefix", content=prefix.encode())
            _, progress = await pipe.stins_scan("eiger", 4)
            status = (await pipe.client.get("/api/v1/status")).json()
            after = (await pipe.client.get("/api/v1/config")).json()
            sequence = (await pipe.client.get("/api/v1/sequence")).json()
            async with httpx.AsyncClient(base_url=reducer, timeout=10) as client:
                publish = (await client.get("/api/v1/result/")).json()
                reducer_status = (await client.get("/api/v1/status?full=true")).json()
            return {
                "recorded": recorded,
                "config": config,
                "undeclared": undeclared,
                "full": full.json(),
                "progress": progress,
                "status": status,
                "after": after,
                "sequence": sequence,
                "publish": publish,
                "reducer_status": reducer_status,
            }

    seen = asyncio.run(scenario())
    assert compare(json.loads(RECORDING.read_text()), seen["recorded"]) == INTENDED

    calls = {(r["i"], r["call"]): r for r in seen["recorded"]}
    # the bare answers: the hash of the values now (as GET /config reports it), null, true
    set_hash = calls[(7, "POST /api/v1/parameter/probe_int")]
    assert set_hash["status"] == 200 and set_hash["shape"] == "str"
    assert calls[(14, "POST /api/v1/stop")]["shape"] == "NoneType"
    assert calls[(18, "GET /api/v1/status")]["shape"] == "bool"
    config = seen["config"]
    assert seen["full"]["parameters_hash"] == config["parameters_hash"]
    assert seen["full"]["declared"] is False and seen["full"]["version"] >= 3

    # an undeclared name is stored as raw bytes and reaches every payload as parameters[x].data
    assert seen["undeclared"].content == b"abc"
    assert seen["undeclared"].headers["content-type"] == "application/x.bytes"
    assert seen["publish"]["seen"] and set(seen["publish"]["seen"]) == {"abc"}
    assert seen["publish"]["reducer_sees"] == "abc"

    # our /config parses into the original's EnsembleState, and its ids are the true ones
    ensemble = EnsembleState.model_validate(config)
    assert ensemble.get_streams() == ["eiger"]
    assert sorted(ensemble.get_workers()) == ["worker0", "worker1"]
    assert set(config["parameters_version"]) >= {"probe_int", "undeclared_x"}
    instances = {c["name"]: c["instance"] for c in config["components"]}
    for worker in ensemble.workers:
        assert worker.service_uuid.hex == instances[worker.name]
    (ingester,) = ensemble.ingesters
    assert {str(u) for u in ingester.connected_workers} == {
        str(w.service_uuid) for w in ensemble.workers
    }

    # the payloads' state: the original's fields, filled
    states = [WorkerState.model_validate(s) for s in seen["publish"]["states"]]
    scan_ids = {s.mapping_uuid.hex for s in states if s.mapping_uuid is not None}
    assert scan_ids == {seen["status"]["scan_id"]}
    assert {s.service_uuid.hex for s in states} <= {instances["worker0"], instances["worker1"]}
    assert {s.parameters_hash for s in states} == {seen["after"]["parameters_hash"]}
    assert all(s.tags == {"generic"} for s in states)

    # /status: the completed events listed, the original's way; the count is in /progress
    status, progress = seen["status"], seen["progress"]
    assert status["completed_events"] == list(range(progress["total_events"]))
    assert progress["completed_events"] == len(status["completed_events"])
    assert set(status["processing_times"]) == {"worker0", "worker1"}
    assert seen["reducer_status"]["scan_id"] == status["scan_id"]

    # dump_prefix (listed with the payloads' parameters): each ingester dumps each scan
    (dump,) = probe_payload.glob("dumps-*.cbors")
    assert dump.name == f"dumps-eiger-ingester-{uuid.UUID(status['scan_id'])}.cbors"
    assert [m.event_number for m in read_capture(dump)] == list(range(6))

    # /sequence: the original's parts and sequence, ours alongside
    sequence = seen["sequence"]
    request = sequence["request"]
    assert sequence["sequence"] == [
        "reserved_start_end",
        *request["sequence"],
        "reserved_start_end",
    ]
    for name, part in request["parts"].items():
        assert sequence["parts"][name] == {"mapping": part}
    assert sequence["parts"]["reserved_start_end"] == {
        "mapping": {"eiger": [[{"tags": ["generic"], "constraint": None}]]}
    }
    assert sequence["scan_id"] == status["scan_id"] and sequence["events"] == 6

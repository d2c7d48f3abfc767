"""A control client written only against the original dranspose's REST field names drives a
scan on ours: ``POST /api/v1/sequence`` (the answer is the scan id), ``GET /api/v1/config`` as an
``EnsembleState``, ``GET /api/v1/progress`` until ``finished``, ``GET /api/v1/status``; and the
deprecated ``POST /api/v1/mapping`` and ``POST /api/v1/sardana_hook`` of older scan macros."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from dranspose.io.capture import read_capture
from tests.conftest import XRD_CAPTURE
from tests.pipeline import Pipeline, push_capture

WORKER = "src.worker:TestWorker"
REDUCER = "src.reducer:TestReducer"


class OriginalClient:
    """What a beamline's scan macro does with the original's API, nothing of ours."""

    def __init__(self, base: str) -> None:
        self.http = httpx.AsyncClient(base_url=base, timeout=10)

    async def ensemble(self) -> dict[str, Any]:
        return (await self.http.get("/api/v1/config")).json()

    async def wait_for_streams(self, streams: set[str], workers: int) -> dict[str, Any]:
        for _ in range(200):
            state = await self.ensemble()
            have = {s for i in state["ingesters"] for s in i["streams"]}
            if streams <= have and len(state["workers"]) >= workers and state["reducer"]:
                return state
            await asyncio.sleep(0.05)
        raise TimeoutError(f"streams {streams} and {workers} workers never registered")

    async def start(self, path: str, body: Any) -> str:
        response = await self.http.post(path, content=json.dumps(body))
        assert response.status_code == 200, response.text
        uuid = response.json()
        assert isinstance(uuid, str) and len(uuid) >= 32
        return uuid

    async def wait_finished(self) -> dict[str, Any]:
        for _ in range(600):
            progress = (await self.http.get("/api/v1/progress")).json()
            if progress["finished"]:
                return progress
            await asyncio.sleep(0.05)
        raise TimeoutError("scan never finished")


def xrd_events() -> int:
    return sum(1 for _ in read_capture(XRD_CAPTURE))


def test_a_client_of_the_original_runs_a_scan(redis_url, payload_dir):
    events = xrd_events()  # header, 9 images, series end

    async def scenario() -> tuple[dict, dict, dict, dict, str]:
        async with Pipeline(redis_url, WORKER, REDUCER, ["xrd"]) as pipe:
            client = OriginalClient(f"http://127.0.0.1:{pipe.api_port}")
            before = await client.wait_for_streams({"xrd"}, workers=2)
            images = [[{"tags": ["generic"], "constraint": i}] for i in range(events - 2)]
            uuid = await client.start(
                "/api/v1/sequence", {"parts": {"main": {"xrd": images}}, "sequence": ["main"]}
            )
            await push_capture(pipe.upstream_ports["xrd"], XRD_CAPTURE)
            progress = await client.wait_finished()
            status = (await client.http.get("/api/v1/status")).json()
            for _ in range(100):  # the registry is at most one heartbeat (0.5 s) old
                after = await client.ensemble()
                if after["ingesters"][0]["processed_events"] >= events:
                    break
                await asyncio.sleep(0.05)
            await client.http.aclose()
            return before, progress, status, after, uuid

    before, progress, status, after, uuid = asyncio.run(scenario())
    assert {w["name"] for w in before["workers"]} == {"worker0", "worker1"}
    for worker in after["workers"]:
        assert worker["tags"] == ["generic"]
        assert [i["streams"] for i in worker["ingesters"]] == [["xrd"]]
        assert worker["dranspose_version"]
        assert worker["parameters_hash"] == after["parameters_hash"]  # all on the same values
    (ingester,) = after["ingesters"]
    # ours connect to the workers and listen on no data-plane address: url is there, and null
    assert ingester["streams"] == ["xrd"] and "url" in ingester and ingester["url"] is None
    assert ingester["processed_events"] == events
    assert sum(w["processed_events"] for w in after["workers"]) >= events
    assert after["reducer"]["processed_events"] >= events - 2
    assert after["reducer"]["parameters_hash"] == after["parameters_hash"]
    assert after["controller_version"] and len(after["parameters_hash"]) == 64
    assert isinstance(after["parameters_version"], dict)  # the original's {name: uuid}
    assert isinstance(after["parameters_revision"], int)
    assert progress["completed_events"] == progress["total_events"] == events
    assert progress["last_assigned"] == events
    assert status["finished"] is True and status["completed_events"] == list(range(events))
    # shares of events per worker: the first and last events go to both workers
    assert sum(status["work_completed"].values()) == events + 2
    assert status["scan_id"] == uuid


def test_deprecated_mapping_and_sardana_hook_start_scans(redis_url, payload_dir):
    events = xrd_events()

    async def scenario() -> list[Any]:
        async with Pipeline(redis_url, WORKER, REDUCER, ["xrd"]) as pipe:
            client = OriginalClient(f"http://127.0.0.1:{pipe.api_port}")
            await client.wait_for_streams({"xrd"}, workers=2)
            seen = []
            images = [[{"tags": ["generic"], "constraint": i}] for i in range(events - 2)]
            for path, body in (
                ("/api/v1/mapping", {"xrd": images}),
                (
                    "/api/v1/sardana_hook",
                    {"streams": ["xrd", "absent"], "scan": {"nb_points": events - 2}},
                ),
            ):
                uuid = await client.start(path, body)
                record = (await client.http.get("/api/v1/sequence")).json()
                await push_capture(pipe.upstream_ports["xrd"], XRD_CAPTURE)
                progress = await client.wait_finished()
                seen.append(
                    (uuid == record["scan_id"], record["events"], progress["completed_events"])
                )
            refusals = [
                await client.http.post(path, content=body)
                for path, body in (
                    ("/api/v1/mapping", "[1, 2]"),
                    ("/api/v1/mapping", json.dumps({"nope": images})),
                    ("/api/v1/sardana_hook", json.dumps({"streams": ["xrd"], "scan": {}})),
                    (
                        "/api/v1/sardana_hook",
                        json.dumps({"streams": ["absent"], "scan": {"nb_points": 3}}),
                    ),
                    (
                        "/api/v1/sequence?all_wrap=false",
                        json.dumps({"parts": {"m": {"xrd": images}}, "sequence": ["m"]}),
                    ),
                )
            ]
            await client.http.aclose()
            return [seen, [(r.status_code, r.json()["detail"]) for r in refusals]]

    seen, refusals = asyncio.run(scenario())
    assert seen == [(True, events, events), (True, events, events)]
    assert [code for code, _ in refusals] == [422] * 5
    assert "expected an object of streams, got list" in refusals[0][1]
    assert "'nope'" in refusals[1][1]
    assert "'scan' must be an object with 'nb_points'" in refusals[2][1]
    assert "no ingester serves any of ['absent']" in refusals[3][1]
    assert "all_wrap=false is not supported" in refusals[4][1]

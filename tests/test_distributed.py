"""The distributed runtime end to end, driven through the controller's REST API."""

from __future__ import annotations

import asyncio

import h5py
import numpy as np

from dranspose.core.triggermap import TriggerMap
from dranspose.runtime.component import REGISTRY_TTL_SECONDS
from dranspose.tools.replay import run_replay
from tests.conftest import XRD_CAPTURE
from tests.pipeline import Pipeline, push_capture, request_json, wait_for


def test_tutorial_payload_gives_the_same_file_as_replay(redis_url, payload_dir):
    run_replay(
        "src.worker:TestWorker", "src.reducer:TestReducer", [XRD_CAPTURE], show_progress=False
    )
    with h5py.File(payload_dir / "output" / "xrd_processed.h5") as fh:
        expected = fh["reduced"][:]
    (payload_dir / "output" / "xrd_processed.h5").unlink()

    async def scenario():
        async with Pipeline(
            redis_url, "src.worker:TestWorker", "src.reducer:TestReducer", ["xrd"]
        ) as pipe:
            await pipe.start_scan(request_json(TriggerMap.simple(["xrd"], 9)))
            await push_capture(pipe.upstream_ports["xrd"], XRD_CAPTURE)
            return await pipe.wait_finished()

    progress = asyncio.run(scenario())
    assert progress["completed"] == 11 and progress["failed"] == [] and progress["lost"] == []
    with h5py.File(payload_dir / "output" / "xrd_processed.h5") as fh:
        np.testing.assert_array_equal(fh["reduced"][:], expected)


def test_a_worker_leaving_after_the_scan_finished_is_no_loss(redis_url, payload_dir, caplog):
    """Once every event is accounted for, a component that stops has lost nothing.

    The controller kept checking the health of the last, finished scan and reported a worker that
    stopped afterwards as died during it (an ERROR and a loss on a finished scan).
    """

    async def scenario():
        async with Pipeline(
            redis_url, "src.worker:TestWorker", "src.reducer:TestReducer", ["xrd"]
        ) as pipe:
            await pipe.start_scan(request_json(TriggerMap.simple(["xrd"], 9)))
            await push_capture(pipe.upstream_ports["xrd"], XRD_CAPTURE)
            await pipe.wait_finished()
            pipe.workers[0].stop()
            await asyncio.wait(pipe.tasks[1:2], timeout=10)

            async def gone() -> bool:
                config = (await pipe.client.get("/api/v1/config")).json()["components"]
                return not any(c["name"] == "worker0" for c in config)

            await wait_for(gone, 10)
            # the controller checks health every REGISTRY_TTL_SECONDS / 3: give it two rounds
            await asyncio.sleep(2 * REGISTRY_TTL_SECONDS / 3 + 0.5)
            return (await pipe.client.get("/api/v1/progress")).json()

    progress = asyncio.run(scenario())
    assert progress["completed"] == 11 and progress["lost"] == [], progress
    died = [r.getMessage() for r in caplog.records if "died" in r.getMessage()]
    assert died == []

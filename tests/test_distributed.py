"""The distributed runtime end to end, driven through the controller's REST API."""

from __future__ import annotations

import asyncio

import h5py
import numpy as np

from dranspose.core.triggermap import TriggerMap
from dranspose.tools.replay import run_replay
from tests.conftest import XRD_CAPTURE
from tests.pipeline import Pipeline, push_capture, request_json


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

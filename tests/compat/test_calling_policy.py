"""One payload, two runners: replay and the live pipeline call it the same way.

Both use :mod:`dranspose.core.calling`; this pins the observable policy: constructor keywords,
``tick`` on the first event, a raising ``get_tick_interval`` reported once and the default used,
``timer()`` without parameters, ``finish`` with the parameters, results in event order.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from dranspose.core.triggermap import TriggerMap
from dranspose.replay import run_replay
from tests.compat import recording
from tests.conftest import XRD_CAPTURE, raw_xrd_events
from tests.pipeline import Pipeline, push_capture, request_json

WORKER = "tests.compat.recording:RecordingWorker"
REDUCER = "tests.compat.recording:RecordingReducer"


def observed(calls: list[tuple]) -> dict:
    kinds = [c[0] for c in calls]
    events = [c for c in calls if c[0] == "process_event"]
    return {
        "worker_init": [c for c in calls if c[0] == "worker_init"],
        "reducer_init": [c for c in calls if c[0] == "reducer_init"],
        "events": [c[1] for c in events],
        "rows": {c[3] for c in events},
        "first_tick": events[0][2] if events else None,
        "tick_types": {type(c[2]) for c in events},
        "results": sorted(c[1] for c in calls if c[0] == "process_result"),
        "timer_called": "timer" in kinds,
        "finishes": [c for c in calls if c[0].endswith("_finish")],
    }


def interval_errors(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and "get_tick_interval" in r.getMessage()
    ]


@pytest.mark.expect_errors
def test_replay_and_live_pipeline_call_a_payload_alike(redis_url, caplog):
    numbers = [n for n, _ in raw_xrd_events()]

    recording.CALLS.clear()
    summary = run_replay(WORKER, REDUCER, [XRD_CAPTURE], nworkers=1, show_progress=False)
    in_replay = observed(list(recording.CALLS))
    replay_errors = interval_errors(caplog)
    assert [f.stage for f in summary.failures] == ["get_tick_interval"]
    caplog.clear()

    recording.CALLS.clear()

    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["xrd"], n_workers=1) as pipe:
            await pipe.start_scan(request_json(TriggerMap.simple(["xrd"], len(numbers) - 2)))
            await push_capture(pipe.upstream_ports["xrd"], XRD_CAPTURE)
            return await pipe.wait_finished()

    progress = asyncio.run(scenario())
    assert progress["completed"] == len(numbers)
    live = observed(list(recording.CALLS))
    live_errors = interval_errors(caplog)

    assert in_replay["events"] == numbers
    assert sorted(live["events"]) == numbers
    expected = {
        "worker_init": [("worker_init", ["state"], True)],
        "reducer_init": [("reducer_init", True)],
        "rows": {3},
        "first_tick": True,
        "tick_types": {bool},
        "results": numbers,
        "timer_called": True,
        "finishes": [("worker_finish", 3), ("reducer_finish", 3)],
    }
    for name, value in expected.items():
        assert in_replay[name] == value, f"replay: {name}"
        assert live[name] == value, f"live: {name}"
    # the broken get_tick_interval is reported once by each runner, not once per event
    assert len(replay_errors) == 1 and len(live_errors) == 1
    assert "ValueError: no interval configured" in replay_errors[0]
    assert "ValueError: no interval configured" in live_errors[0]

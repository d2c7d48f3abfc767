"""The scan life cycle: phases from the controller's progress, and a live scan moving through
them only along the documented transitions."""

from __future__ import annotations

import asyncio
import itertools

from dranspose.core.coordination import Progress, ScanInfo
from dranspose.core.lifecycle import TRANSITIONS, ScanPhase, is_over, phase, reachable
from dranspose.core.triggermap import TriggerMap
from tests.conftest import XRD_CAPTURE
from tests.pipeline import Pipeline, push_capture, request_json


def scan(stopped: bool = False) -> ScanInfo:
    return ScanInfo(scan_id="s", streams=["a"], workers=["w"], n_events=3, stopped=stopped)


def test_phase_of_each_combination():
    assert phase(None, Progress()) is ScanPhase.IDLE
    assert phase(scan(), Progress()) is ScanPhase.RUNNING
    assert phase(scan(stopped=True), Progress()) is ScanPhase.STOPPING
    assert phase(scan(), Progress(finished=True)) is ScanPhase.REDUCING
    assert phase(scan(stopped=True), Progress(finished=True)) is ScanPhase.REDUCING
    done = Progress(finished=True, reducer_finished=True)
    assert phase(scan(), done) is ScanPhase.FINISHED
    assert phase(scan(stopped=True), done) is ScanPhase.STOPPED
    assert is_over(scan(), done) and not is_over(scan(), Progress(finished=True))


def test_every_phase_reaches_an_end_and_ends_are_final():
    ends = {ScanPhase.FINISHED, ScanPhase.STOPPED}
    for start in ScanPhase:
        assert reachable(start) & ends, start
    for end in ends:
        assert TRANSITIONS[end] == frozenset()


def test_a_live_scan_moves_only_along_the_transitions(redis_url, payload_dir):
    async def scenario() -> list[str]:
        async with Pipeline(
            redis_url, "src.worker:TestWorker", "src.reducer:TestReducer", ["xrd"]
        ) as pipe:
            seen = [(await pipe.client.get("/api/v1/scan")).json()["state"]]
            await pipe.start_scan(request_json(TriggerMap.simple(["xrd"], 9)))
            pusher = asyncio.create_task(push_capture(pipe.upstream_ports["xrd"], XRD_CAPTURE))
            while seen[-1] not in ("finished", "stopped"):
                state = (await pipe.client.get("/api/v1/scan")).json()["state"]
                if state != seen[-1]:
                    seen.append(state)
                await asyncio.sleep(0.01)
            await pusher
            return seen

    seen = [ScanPhase(s) for s in asyncio.run(scenario())]
    assert seen[0] is ScanPhase.IDLE and seen[-1] is ScanPhase.FINISHED
    for before, after in itertools.pairwise(seen):
        assert after in reachable(before) and after is not before, seen

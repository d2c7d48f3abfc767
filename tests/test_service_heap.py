"""A service process exempts its startup heap from the garbage collector's passes.

Full collections walked the ~100,000 objects a service holds from its imports on, and took
40-90 ms in the middle of a scan on the test machine (bench/throughput.py --paced showed them as
the worst latencies); ``gc.freeze`` moves them out of the collector's generations.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from dranspose.cli import services


def _tracked(obj: object) -> bool:
    """Whether the collector's passes still walk ``obj`` (frozen objects are not listed)."""
    return any(o is obj for o in gc.get_objects())


def test_run_async_freezes_what_exists_before_and_what_is_built_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(services, "SETTLE_SECONDS", 0.1)
    before = ["imports"]  # stands for the modules and classes imported before the loop
    seen: dict[str, bool] = {}

    async def main() -> None:
        built = ["app"]  # stands for the web app or payload a service builds at start
        seen["before, in the loop"] = _tracked(before)
        seen["built, at first"] = _tracked(built)
        await asyncio.sleep(0.5)
        seen["built, once settled"] = _tracked(built)
        later = ["scan"]
        seen["made later"] = _tracked(later)

    try:
        assert _tracked(before)
        assert services.run_async(main) == 0
    finally:
        gc.unfreeze()  # give the test process its collector back
    assert seen == {
        "before, in the loop": False,
        "built, at first": True,
        "built, once settled": False,
        "made later": True,  # what a scan creates is collected as usual
    }
    assert _tracked(before)

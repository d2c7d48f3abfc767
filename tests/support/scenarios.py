"""Running an asyncio scenario of a test, and what a scan's progress must say when it completed."""

from __future__ import annotations

import asyncio
from typing import Any

SCENARIO_TIMEOUT = 30.0


def run(scenario, timeout: float = SCENARIO_TIMEOUT):
    """Run the coroutine function ``scenario`` in a new event loop, at most ``timeout`` s."""
    return asyncio.run(asyncio.wait_for(scenario(), timeout))


def check_complete(progress: dict[str, Any], total: int) -> None:
    """Every one of the ``total`` events was processed; none failed, none was lost."""
    assert progress["total"] == total
    assert progress["completed"] == total, progress
    assert progress["failed"] == [] and progress["lost"] == [], progress

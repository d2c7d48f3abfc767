"""Killing a pipeline's controller with SIGKILL and starting a successor (issue 27).

Shared by the controller's resume tests and the components' tests of what they do while no
controller is there. Works on any object with the process pipeline's shape
(``tests/test_faults.FaultPipeline``): ``controller`` (its process), ``start_controller(*args)``,
``client`` (HTTP to the controller's port) and ``procs.env["REDIS_URL"]``.
"""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any, Callable, Protocol

import httpx
import redis

from dranspose.io.store import Key
from tests.support.processes import wait_until

TAKEOVER_WAIT = "20"
"""A successor's ``--takeover-wait``: the dead controller's lock expires within 5 s."""


class RestartablePipeline(Protocol):
    controller: subprocess.Popen
    client: httpx.Client

    def start_controller(self, *extra: str) -> subprocess.Popen: ...


def kill_controller(p: RestartablePipeline) -> None:
    """SIGKILL: no lock released, no last progress written; as a node failure leaves it."""
    p.controller.send_signal(signal.SIGKILL)
    p.controller.wait(10)


def restart_controller(p: RestartablePipeline, after: float, *extra: str) -> None:
    """Start a successor ``after`` seconds later (it waits for the dead one's lock)."""
    time.sleep(after)
    p.controller = p.start_controller("--takeover-wait", TAKEOVER_WAIT, *extra)


def progress(p: RestartablePipeline) -> dict[str, Any]:
    return p.client.get("/api/v1/progress").json()


def wait_progress(
    p: RestartablePipeline, predicate: Callable[[dict[str, Any]], bool], what: str, timeout=60
) -> dict[str, Any]:
    """Poll the controller's progress often (a kill point can be a short window)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            now = progress(p)
            if predicate(now):
                return now
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{what} not reached within {timeout} s: {progress(p)}")


def wait_resumed(p: RestartablePipeline, timeout: float = 60) -> dict[str, Any]:
    """The successor serves its API and has taken the scan over."""
    return wait_until(
        lambda: (now := progress(p))["resumed"] >= 1 and now, timeout, "the scan resumed"
    )


def published_batches(redis_url: str, scan_id: str, prefix: str = "dranspose") -> int:
    """Assignment batches the scan has in Redis (0: no assignment was published yet)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.xlen(f"{prefix}:{Key.ASSIGNED}:{scan_id}"))
    finally:
        client.close()

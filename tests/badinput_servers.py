"""A whole pipeline as real processes for the bad-input tests: Redis, controller, worker, reducer,
ingester, started with the documented commands and stopped with Ctrl-C.

The payload is ``tests/payloads/badinput.py`` (a parameter of every type, a varied ``publish``
tree, a worker that parses STINS frames). Not collected by pytest; shared by the tests and by
``bench/badinput.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from dranspose.io.local_redis import PrivateRedis

ROOT = Path(__file__).resolve().parent.parent
WORKER = "tests.payloads.badinput:ParsingWorker"
REDUCER = "tests.payloads.badinput:TreeReducer"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Servers:
    """Where the running pipeline answers, and its processes (to read their output)."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.controller_port = free_port()
        self.reducer_port = free_port()
        self.upstream_port = free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        env = dict(os.environ)
        env["REDIS_URL"] = redis_url
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.env = env

    @property
    def controller_url(self) -> str:
        return f"http://127.0.0.1:{self.controller_port}"

    @property
    def reducer_url(self) -> str:
        return f"http://127.0.0.1:{self.reducer_port}"

    @property
    def upstream(self) -> str:
        return f"tcp://127.0.0.1:{self.upstream_port}"

    def start(self, name: str, *args: str) -> None:
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "dranspose", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_registered(self, want: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while starting")
            try:
                config = httpx.get(f"{self.controller_url}/api/v1/config", timeout=5).json()[
                    "components"
                ]
                reducer = httpx.get(f"{self.reducer_url}/healthz", timeout=5)
                if len(config) >= want and reducer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{want} components not registered within {timeout} s")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextmanager
def running_pipeline(workers: int = 1) -> Iterator[Servers]:
    """Redis and every component as processes, registered and ready, for the ``with`` block."""
    with PrivateRedis() as redis:
        servers = Servers(redis.url)
        try:
            servers.start(
                "controller",
                "controller",
                "--host",
                "127.0.0.1",
                "--port",
                str(servers.controller_port),
            )
            for i in range(workers):
                servers.start(f"w{i}", "worker", "--class", WORKER, "--name", f"w{i}")
            servers.start(
                "reducer",
                "reducer",
                "--class",
                REDUCER,
                "--worker-class",
                WORKER,
                "--host",
                "127.0.0.1",
                "--port",
                str(servers.reducer_port),
            )
            servers.start("ingester", "ingester", "--stream", "xrd", "--upstream", servers.upstream)
            servers.wait_registered(workers + 2)
            yield servers
        finally:
            servers.stop()


def run_scan(servers: Servers, messages: list[list[bytes]], timeout: float = 60) -> dict:
    """Start a scan of ``len(messages) - 2`` events (first and last are the start and end
    messages), play ``messages`` as the detector's PUSH socket, and return the final progress."""
    import json

    import zmq

    from dranspose.core.triggermap import TriggerMap

    request = TriggerMap.simple(["xrd"], len(messages) - 2).request.model_dump(mode="json")
    response = httpx.post(
        f"{servers.controller_url}/api/v1/sequence", content=json.dumps(request), timeout=10
    )
    response.raise_for_status()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
    sock.bind(servers.upstream)
    try:
        for frames in messages:
            sock.send_multipart(frames)
        deadline = time.monotonic() + timeout
        while not httpx.get(f"{servers.controller_url}/api/v1/status", timeout=10).json()[
            "finished"
        ]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"scan not finished within {timeout} s")
            time.sleep(0.1)
    finally:
        sock.close(linger=1000)
        ctx.term()
    return httpx.get(f"{servers.controller_url}/api/v1/progress", timeout=10).json()

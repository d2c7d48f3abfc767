"""Dranspose components as real processes, started with the documented commands, and polling."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import httpx


class Processes:
    """The ``dranspose`` processes one test starts, stopped together by :meth:`stop_all`."""

    def __init__(self, cwd, fresh_redis_url):
        self.cwd = cwd
        self.env = {**os.environ, "REDIS_URL": fresh_redis_url, "PYTHONUNBUFFERED": "1"}
        self.procs: list[subprocess.Popen] = []
        self.clients: list[httpx.Client] = []
        self.drained: list[subprocess.Popen] = []
        """processes stop_all has already stopped (a second stop_all leaves them alone)"""

    def client(self, port: int) -> httpx.Client:
        """An HTTP client of the API on ``port`` that stop_all closes."""
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        self.clients.append(client)
        return client

    def start(self, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dranspose", *args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """SIGINT every process, drain and close its pipes; the output stays readable.

        communicate() rather than wait(): a process blocked on a full pipe cannot exit. Each
        process's ``stdout``/``stderr`` become in-memory copies of what it wrote, so a test reads
        them after the pipes are closed.
        """
        for client in self.clients:
            client.close()
        running = [proc for proc in self.procs if proc not in self.drained]
        for proc in running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in running:
            self.drained.append(proc)
            try:
                out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate(timeout=5)
            proc.stdout, proc.stderr = io.StringIO(out or ""), io.StringIO(err or "")


def wait_until(predicate, timeout: float, what: str):
    """Poll ``predicate`` until it returns a true value (returned); TimeoutError after
    ``timeout`` seconds naming ``what``. A server not answering yet counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached within {timeout} s")

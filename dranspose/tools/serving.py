"""Serve an HTTP app: the one place uvicorn is configured and started.

The HTTP apps (``dranspose.http``) are built by factories that take their host and access
policy and know nothing of servers; the services (``dranspose.runtime``) know nothing of HTTP.
Whoever runs a service serves its app with one of these: the command line next to the service
in its event loop (:class:`ServedApp`), a replay from a thread of its own (:func:`serve_in_thread`:
a payload's test suite calls ``replay(..., port=...)`` from plain synchronous code).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any, AsyncIterator, Optional

import uvicorn

from dranspose.io.http_server import EmbeddedServer

logger = logging.getLogger(__name__)

STOP_SECONDS = 5.0
"""How long stopping a server waits for its open requests before giving up on them."""


def server(app: Any, host: str, port: int, **options: Any) -> uvicorn.Server:
    """A uvicorn server for ``app`` with the services' defaults (quiet: the components log)."""
    settings: dict[str, Any] = {"log_level": "warning", **options}
    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, **settings))


class ServedApp:
    """An app served by a task of the running event loop, next to the service it shows."""

    def __init__(self, app: Any, host: str, port: int, **options: Any) -> None:
        self.server = server(app, host, port, **options)
        self.task: Optional[asyncio.Task[None]] = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve())

    async def stop(self, timeout: float = STOP_SECONDS) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.wait([self.task], timeout=timeout)


@contextlib.asynccontextmanager
async def served(app: Any, host: str, port: int, **options: Any) -> AsyncIterator[ServedApp]:
    """Serve ``app`` while the block runs (in this event loop)."""
    served_app = ServedApp(app, host, port, **options)
    served_app.start()
    try:
        yield served_app
    finally:
        await served_app.stop()


class RunningServer:
    """A started HTTP server; ``stop()`` shuts it down and joins its thread."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)


def serve_in_thread(
    app: Any,
    address: str = "127.0.0.1",
    port: int = 5000,
    timeout: float = 10.0,
    what: str = "the HTTP API",
) -> RunningServer:
    """Serve ``app`` from a thread; raise a clear error if it cannot listen (e.g. port in use)."""
    config = uvicorn.Config(app, host=address, port=port, log_level="warning")
    thread_server = EmbeddedServer(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            thread_server.run()
        except BaseException as exc:  # SystemExit from uvicorn when bind fails
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"http-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not thread_server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            thread_server.should_exit = True
            raise OSError(
                f"cannot serve {what} on {address}:{port} "
                f"(port in use or not allowed?{' ' + repr(failure[0]) if failure else ''})"
            )
        time.sleep(0.01)
    logger.info("%s on http://%s:%d/", what, address, port)
    return RunningServer(thread_server, thread)

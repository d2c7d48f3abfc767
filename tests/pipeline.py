"""A whole pipeline in one event loop, for tests: real Redis, ZeroMQ and HTTP between services.

Controller, ingesters, workers and the reducer run as asyncio tasks (clearer to drive from a test
than five processes); everything between them crosses real sockets and a real Redis.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import uvicorn
import zmq
import zmq.asyncio

from dranspose.core.triggermap import TriggerMap
from dranspose.http.controller_api import create_app as create_controller_app
from dranspose.http.reducer_api import create_app as create_reducer_app
from dranspose.io.capture import read_capture
from dranspose.io.store import Store
from dranspose.runtime.controller import Controller
from dranspose.runtime.ingester import Ingester
from dranspose.runtime.reducer import Reducer
from dranspose.runtime.worker import Worker
from dranspose.tools.source import StinsSource
from tests.ports import free_port


class Pipeline:
    """All components of one pipeline as tasks in the running loop."""

    def __init__(
        self,
        redis_url: str,
        worker_class: str,
        reducer_class: str,
        streams: list[str],
        n_workers: int = 2,
        prefix: str = "test",
        worker_tags: list[list[str]] | None = None,
        ingester_options: dict[str, dict] | None = None,
        reducer_http_port: int | None = None,
    ) -> None:
        self.redis_url = redis_url
        self.prefix = prefix
        self.api_port = free_port()
        self.upstream_ports = {s: free_port() for s in streams}
        self.stores: list[Store] = []
        self.controller = Controller(self._store())
        tags = worker_tags or [["generic"]] * n_workers
        self.workers = [
            Worker(self._store(), worker_class, name=f"worker{i}", tags=t)
            for i, t in enumerate(tags)
        ]
        self.reducer = Reducer(
            self._store(), reducer_class, worker_class=worker_class, http_port=reducer_http_port
        )
        options = ingester_options or {}
        self.ingesters = [
            Ingester(self._store(), s, **{"upstream": f"tcp://127.0.0.1:{p}", **options.get(s, {})})
            for s, p in self.upstream_ports.items()
        ]
        self.tasks: list[asyncio.Task] = []
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.api_port}", timeout=10)

    def _store(self) -> Store:
        store = Store(self.redis_url, prefix=self.prefix)
        self.stores.append(store)
        return store

    async def __aenter__(self) -> Pipeline:
        await self.stores[0].redis.flushdb()
        controller = self.controller
        app = create_controller_app(controller, lifespan=lambda _: controller.running())
        config = uvicorn.Config(app, host="127.0.0.1", port=self.api_port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.tasks.append(asyncio.create_task(self.server.serve()))
        for comp in [*self.workers, self.reducer, *self.ingesters]:
            self.tasks.append(asyncio.create_task(comp.serve()))
        self.reducer_server: uvicorn.Server | None = None
        if self.reducer.http_port is not None:  # its API, served as the command line serves it
            self.reducer_server = uvicorn.Server(
                uvicorn.Config(
                    create_reducer_app(self.reducer),
                    host=self.reducer.http_host,
                    port=self.reducer.http_port,
                    log_level="warning",
                )
            )
            self.tasks.append(asyncio.create_task(self.reducer_server.serve()))
        await self.wait_registered()
        return self

    async def wait_registered(self, timeout: float = 20) -> None:
        want = len(self.workers) + len(self.ingesters) + 1

        async def registered() -> bool:
            try:
                config = (await self.client.get("/api/v1/config")).json()["components"]
            except httpx.TransportError:
                return False
            return sum(c["kind"] in ("worker", "ingester", "reducer") for c in config) >= want

        await wait_for(registered, timeout)

    async def __aexit__(self, *exc) -> None:
        # the controller first: it checks the health of the last scan's components for as long
        # as it runs, and would report the ones stopped below as died during that scan
        self.server.should_exit = True
        await asyncio.wait(self.tasks[:1], timeout=10)
        for comp in [*self.workers, self.reducer, *self.ingesters]:
            comp.stop()
        if self.reducer_server is not None:
            self.reducer_server.should_exit = True
        await asyncio.wait(self.tasks, timeout=10)
        await self.client.aclose()
        for store in self.stores:
            await store.close()

    async def start_scan(self, request: dict) -> str:
        response = await self.client.post("/api/v1/sequence", content=json.dumps(request))
        assert response.status_code == 200, response.text
        scan_id = response.json()  # the id itself, as the original dranspose answers
        assert isinstance(scan_id, str), scan_id
        return scan_id

    async def stins_scan(
        self, stream: str, frames: int, shape: tuple[int, ...] = (2, 2), timeout: float = 60
    ) -> tuple[str, dict]:
        """Start a simple scan of ``frames`` events, feed ``stream`` from a STINS source and
        wait until it is finished; the scan id and the controller's final progress."""
        scan_id = await self.start_scan(request_json(TriggerMap.simple([stream], frames)))
        source = StinsSource(
            f"tcp://127.0.0.1:{self.upstream_ports[stream]}", shape=shape, frames=frames
        )
        source.start()
        try:
            progress = await self.wait_finished(timeout)
            assert source.wait_done(10)
        finally:
            source.stop()
        return scan_id, progress

    async def wait_finished(self, timeout: float = 30) -> dict:
        async def finished() -> bool:
            return (await self.client.get("/api/v1/status")).json()["finished"]

        await wait_for(finished, timeout)
        return (await self.client.get("/api/v1/progress")).json()


async def wait_for(condition, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


async def push_capture(port: int, path, stream: str = "xrd") -> None:
    """Play an ingester dump's frames of one stream as the detector's PUSH socket would."""
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.bind(f"tcp://127.0.0.1:{port}")
    try:
        for message in read_capture(path):
            await sock.send_multipart(message.streams[stream].frames)
        await asyncio.sleep(0.2)
    finally:
        sock.close(linger=1000)
        ctx.term()


def request_json(trigger_map: TriggerMap) -> dict:
    return trigger_map.request.model_dump(mode="json")

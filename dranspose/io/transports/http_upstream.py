"""An HTTP server upstream (Sardana's HTTP recorder): every accepted POST is one message.

The ingester listens on the address given as its upstream (``http://0.0.0.0:5010``) and accepts
``POST <prefix><endpoint>`` for the protocol's endpoints (:class:`~dranspose.protocols.registry.HttpFraming`,
for Sardana ``/v1/data_desc``, ``/v1/record_data``, ``/v1/record_end`` and the ignored
``/v1/custom_data``). A post is answered only once its message is in the backlog, so the poster
is held back while the backlog is full, at most :data:`ROOM_TIMEOUT_SECONDS`; then it gets 503.
A bad body gets 400 and an unknown path 404, each with a JSON ``detail`` saying what was
expected. ``GET /`` describes the stream and its counters. Being the server, this upstream
needs no reconnecting: a poster that restarts simply posts again.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Optional

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dranspose.io.http_server import EmbeddedServer
from dranspose.io.transports.address import host_port
from dranspose.io.transports.base import DEFAULT_BACKLOG, Upstream
from dranspose.protocols.registry import Protocol

logger = logging.getLogger(__name__)

ROOM_TIMEOUT_SECONDS = 30.0
START_TIMEOUT_SECONDS = 10.0


class HttpUpstream(Upstream):
    transport = "http"

    def __init__(
        self,
        protocol: Protocol,
        url: str,
        *,
        name: str,
        backlog: int = DEFAULT_BACKLOG,
        regroup: bool = True,
        room_timeout: float = ROOM_TIMEOUT_SECONDS,
    ) -> None:
        if protocol.http is None:
            raise ValueError(f"protocol {protocol.name!r} is not posted over HTTP")
        super().__init__(protocol, url, name=name, backlog=backlog, regroup=regroup)
        self.framing = protocol.http
        self.room_timeout = room_timeout
        host, port = host_port(url, "http", "listen address")
        # proto given explicitly: asyncio turns Nagle off only for sockets that say they are TCP,
        # and without that every response waits ~40 ms for the client's delayed ACK
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind((host or "0.0.0.0", port))
        except OSError as exc:
            self.listener.close()
            raise OSError(f"cannot listen on {url}: {exc.strerror or exc}") from exc
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.address = f"http://{host or '0.0.0.0'}:{self.port}"
        """The address actually listened on (a port 0 resolved)."""
        self.state.url = self.address
        self._server: Optional[EmbeddedServer] = None
        self._task: Optional[asyncio.Task] = None

    def app(self) -> Starlette:
        prefix = self.framing.prefix
        return Starlette(
            routes=[
                Route(prefix + "{endpoint}", self._post, methods=["POST"]),
                Route("/", self._describe, methods=["GET"]),
            ]
        )

    async def start(self) -> None:
        config = uvicorn.Config(self.app(), log_level="warning", access_log=False, lifespan="off")
        self._server = EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self.listener]))
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_SECONDS
        while not self._server.started:
            if self._task.done() or asyncio.get_running_loop().time() > deadline:
                raise OSError(f"the HTTP server on {self.address} did not start")
            await asyncio.sleep(0.01)
        self._connected(
            f"listening for {self.protocol.name} posts on {self.address} ({self._paths()})"
        )

    async def close(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.wait([self._task], timeout=5)
            if not self._task.done():
                self._task.cancel()
        self.listener.close()
        self.state.connected = False

    async def _post(self, request: Request) -> JSONResponse:
        endpoint = request.path_params["endpoint"]
        if endpoint not in self.framing.endpoints:
            return JSONResponse(
                {
                    "detail": f"no endpoint {request.url.path}; this {self.protocol.name} ingester "
                    f"takes POST to {self._paths()}"
                },
                status_code=404,
            )
        body = await request.body()
        try:
            frame = self.framing.to_frame(endpoint, body)
        except ValueError as exc:
            logger.warning("stream %s: refused a post to %s: %s", self.name, request.url.path, exc)
            return JSONResponse({"detail": str(exc)}, status_code=400)
        if frame is None:
            return JSONResponse(
                {"accepted": False, "detail": f"{endpoint} is not part of the stream; ignored"}
            )
        if self.full:
            try:
                await asyncio.wait_for(self._room.wait(), self.room_timeout)
            except asyncio.TimeoutError:
                logger.warning(
                    "stream %s: backlog still full after %g s; post to %s refused",
                    self.name,
                    self.room_timeout,
                    request.url.path,
                )
                return JSONResponse(
                    {
                        "detail": f"backlog of {self.backlog_limit} messages full for "
                        f"{self.room_timeout:g} s: no scan is reading stream {self.name}"
                    },
                    status_code=503,
                )
        self._receive([frame])
        return JSONResponse({"accepted": True})

    async def _describe(self, request: Request) -> JSONResponse:
        body: dict[str, Any] = {
            "stream": self.name,
            "protocol": self.protocol.name,
            "endpoints": [self.framing.prefix + e for e in self.framing.endpoints],
            "backlog": len(self.backlog),
            "state": self.state.model_dump(mode="json"),
        }
        return JSONResponse(body)

    def _paths(self) -> str:
        return ", ".join(self.framing.prefix + e for e in self.framing.endpoints)

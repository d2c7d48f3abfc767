"""A synchronous HTTP client of an ASGI app called in-process: route logic tested without a port.

httpx's ASGITransport is asynchronous; the client here runs every request in one event loop of
its own, so a test reads like one against a server (``client.get(...)``) and what the app keeps
between requests (an asyncio Redis pool) stays on that loop. No lifespan is run: the app must not
need one for the routes tested. (starlette's TestClient would do, but warns that its httpx
support is deprecated.)
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Optional

import httpx


class AppClient:
    def __init__(self, app: Any, base_url: str = "http://app") -> None:
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self, cleanup: Optional[Callable[[], Awaitable[Any]]] = None) -> None:
        """Close the client, then await ``cleanup()`` (the app's own resources) in its loop."""
        self.loop.run_until_complete(self.client.aclose())
        if cleanup is not None:
            self.loop.run_until_complete(cleanup())
        self.loop.close()

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

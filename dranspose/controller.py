"""``uvicorn dranspose.controller:app``: the original dranspose's way to start the controller.

The original's deployments run the controller as an ASGI app configured from the environment
(``REDIS_URL`` or ``SERVICE_REDIS_DSN``, ``LOG_LEVEL``, ``BUILD_META_FILE``, ``DRANSPOSE_TOKEN``),
on uvicorn's default port 8000 unless told otherwise. ``app`` serves the same controller as
``dranspose controller``.

Importing this module must stay cheap and free of side effects (a server, a test or a tool may
import it without meaning to start anything), so ``app`` is a small ASGI callable that builds the
real controller only when the server first calls it, which is the lifespan startup: then the
environment is read (once, into :class:`~dranspose.cli.settings.Settings`, handed on explicitly)
and the controller's own lifespan takes the single-controller lock and starts the scan loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, MutableMapping, Optional

if TYPE_CHECKING:
    from fastapi import FastAPI

    from dranspose.cli.settings import Settings
    from dranspose.runtime.controller import Controller

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PREFIX = "dranspose"
"""The Redis key prefix (``dranspose controller --prefix``'s default)."""


def build_controller(settings: Settings) -> tuple[Controller, FastAPI]:
    """The controller ``dranspose controller`` would run with these settings (default options),
    and its app, whose lifespan runs it (the server here is the ASGI server's, not ours)."""
    from dranspose.http.controller_api import create_app
    from dranspose.io.store import Store
    from dranspose.runtime.controller import Controller
    from dranspose.runtime.logs import configure_logging

    configure_logging("controller", settings.log_level, settings.log_format)
    access = settings.access()
    build_meta = settings.build_meta()  # a bad $BUILD_META_FILE stops the start here
    controller = Controller(Store(settings.redis_url, PREFIX), build_meta=build_meta)
    return controller, create_app(controller, access, lifespan=lambda app: controller.running())


class ControllerApp:
    """An ASGI app that builds the controller from the environment on its first call."""

    def __init__(self, settings: Optional[Callable[[], Settings]] = None) -> None:
        self._settings = settings
        self.controller: Optional[Controller] = None
        self._app: Optional[FastAPI] = None

    def _build(self) -> tuple[Controller, FastAPI]:
        from dranspose.cli.settings import Settings

        return build_controller(self._settings() if self._settings is not None else Settings())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.controller is None or self._app is None:
            try:
                self.controller, self._app = self._build()
            except ValueError as exc:  # bad settings (BuildMetaError, pydantic's errors)
                if scope["type"] != "lifespan":
                    raise
                # say why to the server, which then stops: raised from here, uvicorn would take
                # the app for one without lifespan support and serve a controller that never ran
                await receive()
                await send({"type": "lifespan.startup.failed", "message": f"controller: {exc}"})
                return
        await self._app(scope, receive, send)
        if scope["type"] == "lifespan":  # the server has shut down
            await self.controller.store.close()


app = ControllerApp()

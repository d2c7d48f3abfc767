"""uvicorn without its signal handlers, for servers that run inside something else.

A server started in a background thread, or inside a component's event loop, must leave SIGINT
and SIGTERM to its owner (the command line, a test): uvicorn would otherwise take them over and
stop only itself. Every embedded server of ours (the HTTP upstream, the apps served beside the
services or in a thread) is this class.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import uvicorn

__all__ = ["EmbeddedServer"]


class EmbeddedServer(uvicorn.Server):
    """uvicorn that installs no signal handlers: its owner decides when it stops."""

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
        yield

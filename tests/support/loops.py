"""The leaked-task check: a test that leaves asyncio tasks unfinished fails, naming them.

After ophyd-async's ``fail_test_on_unclosed_tasks``, which looks at the tasks of pytest-asyncio's
loop after each test. Our tests make their loops themselves, in several ways: ``asyncio.run``,
:class:`tests.support.asgi.AppClient`'s own loop, services run in threads (uvicorn's loop
included). Every asyncio loop class initialises through ``asyncio.BaseEventLoop.__init__``, so
:func:`watch_loops` records the loops created while it is active by wrapping that one method,
whoever creates them; afterwards :func:`unfinished_tasks` lists the tasks of those loops that are
not done. ``asyncio.run`` cancels what is left when its main coroutine returns, so its loops
only show tasks that refuse cancellation; a loop closed with tasks pending (an ``AppClient``
closed without awaiting what the app started) or still running (a service thread nobody stopped)
shows them all.

A pending task that nothing refers to any more (its loop closed, its future dropped) is not
listed: the fixture collects garbage first, so asyncio logs "Task was destroyed but it is
pending!" with the task's name during this test, and the suite's ERROR-record check
(``_no_error_logs`` in tests/conftest.py, torn down after this fixture) fails it for that.

Loops created before the test (by a module-scoped fixture) are not watched, and a test that
failed already is not failed again for the tasks its failure left behind.
"""

from __future__ import annotations

import asyncio
import gc
from contextlib import contextmanager
from typing import Any, Iterator

import pytest


@contextmanager
def watch_loops() -> Iterator[list[asyncio.AbstractEventLoop]]:
    """Collects every event loop created in this process while the block runs.

    The list holds the loops strongly until the caller drops it, so a loop closed with pending
    tasks is still there to be looked at.
    """
    loops: list[asyncio.AbstractEventLoop] = []
    original = asyncio.BaseEventLoop.__init__

    def recording_init(self: asyncio.BaseEventLoop, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        loops.append(self)

    asyncio.BaseEventLoop.__init__ = recording_init  # type: ignore[method-assign]
    try:
        yield loops
    finally:
        asyncio.BaseEventLoop.__init__ = original  # type: ignore[method-assign]


def describe(task: asyncio.Task[Any]) -> str:
    """The task's name and coroutine, and where that coroutine waits now."""
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", repr(coro))
    frame = getattr(coro, "cr_frame", None)
    where = f" at {frame.f_code.co_filename}:{frame.f_lineno}" if frame is not None else ""
    return f"{task.get_name()} ({name}{where})"


def unfinished_tasks(loops: list[asyncio.AbstractEventLoop]) -> list[str]:
    """The tasks of ``loops`` that are not done, described, with the state of their loop."""
    found = []
    for loop in loops:
        state = "running" if loop.is_running() else "closed" if loop.is_closed() else "stopped"
        for task in asyncio.all_tasks(loop):
            if not task.done():
                found.append(f"{describe(task)} in a {state} loop")
    return found


@pytest.fixture(autouse=True)
def no_leaked_tasks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test that leaves asyncio tasks unfinished in the loops it created.

    A task left pending is work that never finished or was never cleaned up: a consumer still
    reading, a pool's reconnect, a heartbeat of a service that should have stopped. Each one
    would otherwise pass silently and show up later as "Task was destroyed but it is pending!"
    in some other test, or as a hang.
    """
    failed_before = request.session.testsfailed
    with watch_loops() as loops:
        yield
    if loops:
        gc.collect()  # unreachable pending tasks are reported now, in this test (see above)
    leaked = unfinished_tasks(loops)
    loops.clear()
    if leaked and request.session.testsfailed == failed_before:
        pytest.fail(
            f"{len(leaked)} asyncio task(s) left unfinished by this test (await or cancel "
            f"them before it ends):\n" + "\n".join(f"  {line}" for line in leaked[:20]),
            pytrace=False,
        )

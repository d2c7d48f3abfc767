"""The leaked-task check of tests/support/loops.py: it sees the loops a test creates however they
are created, names the tasks left unfinished, and fails the test that left them."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from tests.support.asgi import AppClient
from tests.support.loops import unfinished_tasks, watch_loops


async def _forever() -> None:
    await asyncio.Event().wait()


def test_a_task_left_in_a_loop_is_named_with_where_it_waits() -> None:
    with watch_loops() as loops:
        loop = asyncio.new_event_loop()
        task = loop.create_task(_forever(), name="left-behind")
        loop.run_until_complete(asyncio.sleep(0))
    try:
        leaked = unfinished_tasks(loops)
        assert len(leaked) == 1
        assert leaked[0].startswith("left-behind (_forever at ")
        waits_at = _forever.__code__.co_firstlineno + 1  # the await in its body
        assert leaked[0].endswith(f"test_leaked_tasks.py:{waits_at}) in a stopped loop")
    finally:  # cancelled and closed here: a task destroyed pending would log an ERROR
        task.cancel()
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        loop.close()
    assert unfinished_tasks(loops) == []


def test_asyncio_run_and_a_closed_app_client_leave_nothing() -> None:
    async def main() -> None:
        asyncio.get_running_loop().create_task(_forever())  # asyncio.run cancels it at the end
        await asyncio.sleep(0)

    with watch_loops() as loops:
        asyncio.run(main())
        AppClient(app=None).close()
    assert len(loops) == 2
    assert unfinished_tasks(loops) == []


def test_a_loop_still_running_in_a_thread_is_seen() -> None:
    started, stop = threading.Event(), None

    async def service() -> None:
        nonlocal stop
        stop = asyncio.Event()
        started.set()
        await stop.wait()

    with watch_loops() as loops:
        thread = threading.Thread(target=asyncio.run, args=(service(),))
        thread.start()
        assert started.wait(10)
    try:
        assert [line.endswith("running loop") for line in unfinished_tasks(loops)] == [True]
    finally:
        assert stop is not None
        loops[0].call_soon_threadsafe(stop.set)
        thread.join(10)
    assert unfinished_tasks(loops) == []


def test_the_fixture_fails_a_test_that_leaks_and_passes_one_that_does_not(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest("from tests.support.loops import no_leaked_tasks  # noqa: F401\n")
    pytester.makepyfile(
        """
        import asyncio

        HELD = []  # what keeps a leaked task alive: a pool, a registry, a module global

        async def forever():
            await asyncio.Event().wait()

        def test_leaks():
            loop = asyncio.new_event_loop()
            HELD.append(loop.create_task(forever(), name="the-leak"))
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

        def test_clean():
            asyncio.run(asyncio.sleep(0))

        def test_fails_anyway():
            loop = asyncio.new_event_loop()
            HELD.append(loop.create_task(forever()))
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()
            assert False, "its own failure"
        """
    )
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*1 asyncio task(s) left unfinished*", "*the-leak (forever at *"])
    assert "its own failure" in result.stdout.str()

"""The scan-session state machine the ingester, worker and reducer share (runtime/session.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Optional

from dranspose.core.coordination import ComponentInfo, ComponentKind, ScanInfo
from dranspose.io.store import Store
from dranspose.runtime.component import Component
from dranspose.runtime.session import ScanWatcher, Sorted, scan_over


def _scan(scan_id: str, **fields: object) -> ScanInfo:
    return ScanInfo(scan_id=scan_id, streams=[], workers=[], n_events=2, **fields)


def test_scan_over_follows_the_controllers_record() -> None:
    assert scan_over("a", None)
    assert scan_over("a", _scan("b"))
    assert scan_over("a", _scan("a", stopped=True))
    assert scan_over("a", _scan("a", complete=True))
    assert not scan_over("a", _scan("a"))


def test_messages_are_sorted_by_scan() -> None:
    sessions: ScanWatcher[str] = ScanWatcher(None, lambda scan: True)  # type: ignore[arg-type]
    sessions.current = "a"
    assert sessions.sort("a", "now") is Sorted.CURRENT
    assert sessions.sort("b", "early for b") is Sorted.LATER
    assert sessions.sort("c", "for a scan replaced before it was joined") is Sorted.LATER
    sessions.left.add("a")
    sessions.current = "b"
    assert sessions.sort("a", "late") is Sorted.LEFT
    assert sessions.early() == ["early for b"]
    assert sessions.early() == []  # c's went with it: c will never be joined


def test_each_scan_is_joined_once_and_a_stopped_one_refuses_joins(redis_url: str) -> None:
    async def scenario() -> tuple[list[str], set[str], set[str]]:
        store = Store(redis_url, prefix=uuid.uuid4().hex)
        comp = Component(store, ComponentInfo(kind=ComponentKind.worker, name="w0"))
        sessions: ScanWatcher[None] = ScanWatcher(comp, lambda s: not s.stopped, record_join=True)
        seen: list[str] = []

        async def session(scan: ScanInfo) -> None:
            seen.append(scan.scan_id)
            assert sessions.current == scan.scan_id
            if scan.scan_id == "a":  # replaced while this session runs
                await store.set_scan(_scan("b"))
            else:
                comp.stop()

        await store.set_scan(_scan("a"))
        await asyncio.wait_for(sessions.join_each(session), 10)
        # joining is checked against the record in one step: refused once it is stopped
        await store.set_scan(_scan("c", stopped=True))
        refused: Optional[bool] = await store.join_scan("c", "w1")
        assert refused is False
        assert await store.join_scan("b", "w1") is False  # no longer the current scan
        joined_a, joined_b = await store.joined("a"), await store.joined("b")
        await store.close()
        return seen, joined_a, joined_b

    seen, joined_a, joined_b = asyncio.run(scenario())
    assert seen == ["a", "b"]
    assert joined_a == {"w0"} and joined_b == {"w0"}

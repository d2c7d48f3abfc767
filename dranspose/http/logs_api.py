"""``GET /api/v1/logs`` and ``GET /api/v1/log_stream``: the gathered log records of all components.

Records live in one capped Redis stream (see :class:`dranspose.runtime.logs.LogShipper`); the stream id of
a record is its cursor. Both endpoints filter by minimum level and by component name. The list
answers the newest ``limit`` matching records, or with ``since`` the first ``limit`` after it (so a
client pages forward with the last id it got); the stream sends records as server-sent events.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import AsyncIterator, Optional

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from dranspose.core.logs import LogEntry, parse_level
from dranspose.io.store import LOG_STREAM_MAXLEN, Store

CHUNK = 500
"""Records read from Redis per round trip while filtering."""
SCAN_LIMIT = 5 * LOG_STREAM_MAXLEN
"""A query stops after reading this many records, even if the stream keeps growing meanwhile."""
BLOCK_MS = 1000
KEEPALIVE_SECONDS = 15.0
"""An idle event stream sends a comment this often, so proxies keep the connection open."""
_MAX_SEQ = 2**64 - 1
_STREAM_ID = re.compile(r"\d+-\d+")


class LogFilter(BaseModel):
    min_level: int = 0
    component: Optional[str] = None
    after_time: Optional[float] = None
    """With ``since=<time>``: records written at or before it are skipped."""

    def matches(self, entry: LogEntry) -> bool:
        return (
            entry.levelno >= self.min_level
            and (self.component is None or entry.component == self.component)
            and (self.after_time is None or entry.time > self.after_time)
        )


def parse_since(text: str) -> tuple[str, Optional[float]]:
    """``since`` as an exclusive stream-id cursor, plus the time bound if a time was given."""
    text = text.strip()
    if _STREAM_ID.fullmatch(text):
        return text, None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(
            f"since={text!r} is neither a log record id (like 1763778600123-0) "
            "nor a Unix time in seconds (like 1763778600.5)"
        )
    # ids start with the millisecond they were written, never before the record's time
    millis = int(seconds * 1000)
    return (f"{millis - 1}-{_MAX_SEQ}" if millis > 0 else "0-0"), seconds


def _query(
    level: Optional[str], component: Optional[str], since: Optional[str]
) -> tuple[LogFilter, Optional[str]]:
    """The filter and the start cursor; HTTP 422 naming the bad parameter."""
    try:
        min_level = parse_level(level) if level is not None else 0
    except ValueError as exc:
        raise HTTPException(422, f"level: {exc}") from exc
    cursor, after = None, None
    if since is not None:
        try:
            cursor, after = parse_since(since)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
    return LogFilter(min_level=min_level, component=component or None, after_time=after), cursor


async def newest(store: Store, wanted: LogFilter, limit: int) -> list[tuple[str, LogEntry]]:
    """The newest ``limit`` matching records, oldest first."""
    out: list[tuple[str, LogEntry]] = []
    cursor: Optional[str] = None
    scanned = 0
    while len(out) < limit and scanned < SCAN_LIMIT:
        chunk = await store.logs_before(cursor, CHUNK)
        if not chunk:
            break
        scanned += len(chunk)
        for entry_id, entry in chunk:
            cursor = entry_id
            if wanted.matches(entry):
                out.append((entry_id, entry))
                if len(out) == limit:
                    break
    out.reverse()
    return out


async def after(
    store: Store, cursor: str, wanted: LogFilter, limit: int
) -> list[tuple[str, LogEntry]]:
    """The first ``limit`` matching records after ``cursor``, oldest first."""
    out: list[tuple[str, LogEntry]] = []
    scanned = 0
    while len(out) < limit and scanned < SCAN_LIMIT:
        chunk = await store.logs_after(cursor, CHUNK)
        if not chunk:
            break
        scanned += len(chunk)
        for entry_id, entry in chunk:
            cursor = entry_id
            if wanted.matches(entry):
                out.append((entry_id, entry))
                if len(out) == limit:
                    break
    return out


def _event(entry_id: str, entry: LogEntry) -> str:
    return f"id: {entry_id}\ndata: {json.dumps(entry.public(entry_id))}\n\n"


def logs_router(store: Store) -> APIRouter:
    router = APIRouter()

    @router.get("/api/v1/logs")
    async def logs(
        level: Optional[str] = Query(
            None, description="minimum level: DEBUG, INFO, WARNING, ERROR or CRITICAL"
        ),
        component: Optional[str] = Query(None, description="only this component's records"),
        limit: int = Query(200, ge=1, le=LOG_STREAM_MAXLEN),
        since: Optional[str] = Query(
            None,
            description="a record id or a Unix time: only later records, the first `limit` of them",
        ),
    ) -> list[dict[str, object]]:
        """Gathered log records, oldest first: ``{id, time, component, level, logger, message}``."""
        wanted, cursor = _query(level, component, since)
        found = (
            await newest(store, wanted, limit)
            if cursor is None
            else await after(store, cursor, wanted, limit)
        )
        return [entry.public(entry_id) for entry_id, entry in found]

    @router.get("/api/v1/log_stream")
    async def log_stream(
        request: Request,
        level: Optional[str] = Query(None, description="minimum level"),
        component: Optional[str] = Query(None, description="only this component's records"),
        since: Optional[str] = Query(
            None,
            description="also send the records after this id or "
            "Unix time first (default: only new records)",
        ),
    ) -> StreamingResponse:
        """Server-sent events, one per record (``id:`` the record id, ``data:`` its JSON).

        The stream opens with a ``: connected`` comment once its start point is fixed: a record
        logged after that is delivered. A reconnecting browser's ``Last-Event-ID`` resumes.
        """
        resume = request.headers.get("last-event-id")
        if since is None and resume and _STREAM_ID.fullmatch(resume.strip()):
            since = resume.strip()
        wanted, cursor = _query(level, component, since)
        start = cursor if cursor is not None else await store.last_log_id()

        async def events() -> AsyncIterator[str]:
            last = start
            yield ": connected\n\n"
            written = time.monotonic()
            while True:
                for entry_id, entry in await store.wait_logs(last, BLOCK_MS):
                    last = entry_id
                    if wanted.matches(entry):
                        written = time.monotonic()
                        yield _event(entry_id, entry)
                if time.monotonic() - written >= KEEPALIVE_SECONDS:
                    written = time.monotonic()
                    yield ": keepalive\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router

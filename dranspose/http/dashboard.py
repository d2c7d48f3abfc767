"""The controller's web dashboard: the page at ``/``, its assets, and the one summary it polls.

The page itself is static package data (``dranspose/dashboard``: plain HTML, CSS and JavaScript,
no build step) and reads the controller's ordinary REST API. What that API did not expose is
added here as one typed endpoint, ``GET /api/v1/scan``: the current scan's record (when it
started, which streams and workers), its progress, the rate it advances at and the time left,
all measured on the controller's clock so ages and ETAs do not depend on the browser's clock.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Literal, Optional

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from dranspose.core.coordination import Progress, ScanInfo
from dranspose.core.protocol import ScanId
from dranspose.core.rates import RateWindow
from dranspose.http.auth import PUBLIC
from dranspose.http.controller_host import ControllerHost

ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
"""Every file the page consists of, with its media type; nothing else is served."""

RATE_WINDOW_SECONDS = 10.0
"""The events/s figure is measured over this recent span (long enough to smooth batching)."""
MIN_RATE_SPAN_SECONDS = 0.5
"""Samples closer than this cannot tell a rate from one batch of completions."""

ScanState = Literal["idle", "running", "stopping", "reducing", "finished", "stopped"]


class ScanOverview(BaseModel):
    """What the dashboard's scan panel shows, in one response."""

    server_time: float = Field(
        description="the controller's clock (epoch seconds): the reference for component ages"
    )
    state: ScanState = Field(
        description="idle: no scan yet; running; stopping: stop requested, events in flight; "
        "reducing: all events accounted, the reducer's finish is pending; finished; stopped"
    )
    scan: Optional[ScanInfo] = None
    progress: Progress = Field(default_factory=Progress)
    done: int = Field(0, description="events accounted for: completed + failed + lost")
    elapsed_seconds: Optional[float] = Field(None, description="since the scan started")
    events_per_second: Optional[float] = Field(
        None,
        description=f"accounted events per second over the last {RATE_WINDOW_SECONDS:g} s "
        "(the average since the start until two samples exist); null when not running",
    )
    eta_seconds: Optional[float] = Field(
        None, description="remaining events at the current rate; null when unknown or not running"
    )


class RateMeter:
    """Recent (time, done) samples of one scan, taken whenever the overview is read.

    The controller's scan loop stays untouched: the rate is measured where it is shown.
    """

    def __init__(self) -> None:
        self.scan_id: Optional[str] = None
        self.samples = RateWindow(RATE_WINDOW_SECONDS, maxlen=500)

    def rate(self, scan_id: ScanId, done: int, now: float) -> Optional[float]:
        """Events per second over the recent window, or None with fewer than two samples."""
        if scan_id != self.scan_id:
            self.scan_id = scan_id
            self.samples.clear()
        self.samples.add(now, done)
        return self.samples.rate(now, RATE_WINDOW_SECONDS, MIN_RATE_SPAN_SECONDS)


def _state(scan: ScanInfo, progress: Progress) -> ScanState:
    if progress.finished and progress.reducer_finished:
        return "stopped" if scan.stopped else "finished"
    if progress.finished:
        return "reducing"
    return "stopping" if scan.stopped else "running"


def overview(controller: ControllerHost, meter: RateMeter) -> ScanOverview:
    """The current scan as the dashboard shows it (pure apart from reading the clock)."""
    now = time.time()
    run = controller.run_state
    if run is None:
        return ScanOverview(server_time=now, state="idle")
    progress = run.progress
    done = progress.completed + len(progress.failed) + len(progress.lost)
    state = _state(run.scan, progress)
    out = ScanOverview(server_time=now, state=state, scan=run.scan, progress=progress, done=done)
    if state != "running":
        return out
    elapsed = max(now - run.scan.started_at, 0.0)
    out.elapsed_seconds = elapsed
    rate = meter.rate(run.scan.scan_id, done, time.monotonic())
    if rate is None and elapsed > 0:
        rate = done / elapsed
    out.events_per_second = rate
    if rate:
        out.eta_seconds = max(progress.total - done, 0) / rate
    return out


def _asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"no dashboard asset {name!r} (assets: {', '.join(ASSETS)})")
    body = (resources.files("dranspose") / "dashboard" / name).read_bytes()
    # the page is small and changes with upgrades: always revalidate instead of caching
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache"})


def dashboard_router(controller: ControllerHost) -> APIRouter:
    """Routes for ``app.include_router``: ``/``, ``/dashboard/{asset}``, ``/api/v1/scan``."""
    router = APIRouter()
    meter = RateMeter()

    # the page and its assets hold no data, and the page is where the token is entered
    @router.get("/", response_class=HTMLResponse, include_in_schema=False, openapi_extra=PUBLIC)
    async def page() -> Response:
        return _asset("index.html")

    @router.get("/dashboard/{name}", include_in_schema=False, openapi_extra=PUBLIC)
    async def asset(name: str) -> Response:
        return _asset(name)

    @router.get("/api/v1/scan", response_model=ScanOverview)
    async def scan() -> ScanOverview:
        """The current scan with progress, rate and ETA on the controller's clock."""
        return overview(controller, meter)

    return router

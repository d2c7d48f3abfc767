"""The controller's HTTP app (:func:`create_app`) and its REST API: the routes, not the logic.

Every route reads or calls the :class:`~dranspose.http.controller_host.ControllerHost` it is
given; nothing here keeps scan state, and nothing here starts the controller: whoever runs it
serves the app and passes the lifespan that runs the service (the command line,
``dranspose.controller:app``). Responses are a superset of the original dranspose's: control
clients written for it (scan macros, device servers, beamline pages) read its field names
(``GET /api/v1/config`` as an ``EnsembleState`` object, ``last_assigned``/``completed_events``/
``total_events``/``finished`` in ``/progress``, the scan id as a bare string from
``POST /api/v1/sequence``, the deprecated ``/mapping`` and ``/sardana_hook``), and ours read our
fields alongside (docs/rest-api.md, "Clients of the original dranspose").
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Optional

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from dranspose import __version__
from dranspose.core.coordination import ComponentInfo, ComponentKind, Progress
from dranspose.core.lifecycle import is_over
from dranspose.core.triggermap import SequenceRequest, TriggerMap, TriggerMapError
from dranspose.http import original
from dranspose.http.auth import AccessPolicy, guard
from dranspose.http.controller_host import ControllerHost
from dranspose.http.dashboard import dashboard_router
from dranspose.http.docs_pages import new_app
from dranspose.http.ensemble import RateTracker, ensemble_state
from dranspose.http.errors import RAW_BODY, install_error_handlers
from dranspose.http.logs_api import logs_router
from dranspose.http.metrics import observability_router
from dranspose.http.original import FULL
from dranspose.http.parameters_api import parameter_routes
from dranspose.io.store import UNAVAILABLE as REDIS_UNAVAILABLE

Lifespan = Callable[[FastAPI], Any]
"""FastAPI's ``lifespan``: an async context manager factory run around serving."""


def _inlined(schema: Any, defs: Optional[dict[str, Any]] = None) -> Any:
    """A JSON schema with its local ``$defs`` references replaced by the definitions, so it can
    be embedded anywhere in the OpenAPI document."""
    if defs is None and isinstance(schema, dict):
        defs = schema.get("$defs", {})
    if isinstance(schema, dict):
        if "$ref" in schema:
            known = defs or {}
            return _inlined(known[schema["$ref"].rsplit("/", 1)[-1]], known)
        return {k: _inlined(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inlined(v, defs) for v in schema]
    return schema


SEQUENCE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inlined(SequenceRequest.model_json_schema())}},
    }
}
"""The documented body of ``POST /api/v1/sequence`` (parsed by hand, to word its errors)."""


def _progress(controller: ControllerHost) -> dict[str, Any]:
    run = controller.run_state
    progress = run.progress if run is not None else Progress()
    return {
        **progress.model_dump(mode="json"),
        # the original's names: released events, completed events, the map's length, and
        # "finished" once every event is accounted for and the reducer's finish has run
        "last_assigned": controller.released_events if run is not None else 0,
        "completed_events": progress.completed,
        "total_events": progress.total,
        "finished": is_over(run.scan if run is not None else None, progress),
    }


async def _start(
    controller: ControllerHost, trigger_map: TriggerMap, retry_lost: Optional[bool]
) -> str:
    try:
        scan = await controller.start_scan(trigger_map, retry_lost=retry_lost)
    except TriggerMapError as exc:
        raise HTTPException(422, str(exc)) from exc
    return scan.scan_id


def _refuse_unwrapped(all_wrap: bool) -> None:
    if not all_wrap:
        raise HTTPException(
            422,
            "all_wrap=false is not supported: every scan has a first event (the detectors' "
            "series headers) and a last one (their series ends) around the trigger map",
        )


def _json_body(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(422, f"{what}: the body is not JSON ({exc})") from exc


def sequence_routes(router: APIRouter, controller: ControllerHost) -> None:
    @router.post("/api/v1/sequence", openapi_extra=SEQUENCE_BODY)
    async def set_sequence(
        request: Request, retry_lost: Optional[bool] = None, all_wrap: bool = True
    ) -> str:
        """Set the trigger map (parts and their sequence) and start a scan; returns its id.

        The id is a bare JSON string, as the original dranspose returns it; the scan's record
        (events, workers, ``retry_lost``) is under ``GET /api/v1/sequence`` and
        ``GET /api/v1/scan``. ``retry_lost`` re-delivers the events of a worker that dies to
        another worker with its tags (default: the controller's ``--retry-lost``).
        """
        _refuse_unwrapped(all_wrap)
        try:
            trigger_map = TriggerMap.from_request_json(await request.body())
        except TriggerMapError as exc:
            raise HTTPException(422, str(exc)) from exc
        return await _start(controller, trigger_map, retry_lost)

    @router.get("/api/v1/sequence")
    async def get_sequence() -> dict[str, Any]:
        """The current scan's trigger map in the original's shape (each part as
        ``{"mapping": ...}``, the reserved first and last event as the part
        ``reserved_start_end`` around the sequence), with its id, events, workers,
        ``retry_lost`` and the request as it was posted (``request``)."""
        run = controller.run_state
        if run is None:
            raise HTTPException(404, "no sequence has been set")
        if run.request is None:
            raise HTTPException(
                404,
                f"scan {run.scan.scan_id} was started by a previous "
                "controller; its trigger map is not known here",
            )
        return original.sequence_record(run)

    @router.get("/api/v1/mapping", deprecated=True)
    async def get_mapping() -> dict[str, Any]:
        """Deprecated (older scan macros): the same answer as ``GET /api/v1/sequence``."""
        return await get_sequence()

    @router.post("/api/v1/mapping", deprecated=True, openapi_extra=RAW_BODY)
    async def set_mapping(request: Request, all_wrap: bool = True) -> str:
        """Deprecated (older scan macros): one part, ``{stream: [[virtual workers] | null]}``;
        the same as posting ``{"parts": {"main": <body>}, "sequence": ["main"]}`` to
        ``/api/v1/sequence``, with the same validation."""
        _refuse_unwrapped(all_wrap)
        part = _json_body(await request.body(), "mapping")
        if not isinstance(part, dict):
            raise HTTPException(
                422, f"mapping: expected an object of streams, got {type(part).__name__}"
            )
        body = json.dumps({"parts": {"main": part}, "sequence": ["main"]})
        try:
            trigger_map = TriggerMap.from_request_json(body)
        except TriggerMapError as exc:
            raise HTTPException(422, f"mapping: {exc}") from exc
        return await _start(controller, trigger_map, None)

    @router.post("/api/v1/sardana_hook", deprecated=True, openapi_extra=RAW_BODY)
    async def sardana_hook(request: Request) -> str:
        """Deprecated (Sardana scan hooks): ``{"streams": [...], "scan": {"nb_points": N}}``
        starts a scan of N events over the named streams that an ingester serves, each event to
        one worker (``TriggerMap.simple``)."""
        info = _json_body(await request.body(), "sardana_hook")
        streams, points = await _sardana_scan(controller, info)
        try:
            trigger_map = TriggerMap.simple(streams, points)
        except TriggerMapError as exc:
            raise HTTPException(422, f"sardana_hook: {exc}") from exc
        return await _start(controller, trigger_map, None)


async def _sardana_scan(controller: ControllerHost, info: Any) -> tuple[list[str], int]:
    """The served streams and the number of points a Sardana hook body asks for."""
    if not isinstance(info, dict):
        raise HTTPException(422, "sardana_hook: expected an object with 'streams' and 'scan'")
    scan, streams = info.get("scan"), info.get("streams")
    if not isinstance(scan, dict) or "nb_points" not in scan:
        raise HTTPException(422, "sardana_hook: 'scan' must be an object with 'nb_points'")
    points = scan["nb_points"]
    if type(points) is not int or points < 1:
        raise HTTPException(
            422, f"sardana_hook: scan.nb_points must be a positive integer, got {points!r}"
        )
    if not isinstance(streams, list) or not all(isinstance(s, str) for s in streams):
        raise HTTPException(422, "sardana_hook: 'streams' must be a list of stream names")
    served = {
        s
        for c in await controller.store.components()
        for s in c.streams
        if c.kind == ComponentKind.ingester
    }
    used: list[str] = sorted(served.intersection(streams))
    if not used:
        shown = ", ".join(sorted(served)) or "none"
        raise HTTPException(
            422, f"sardana_hook: no ingester serves any of {streams!r} (served: {shown})"
        )
    return used, points


def state_routes(router: APIRouter, controller: ControllerHost) -> None:
    rates = RateTracker()

    @router.get("/api/v1/config")
    async def config() -> dict[str, Any]:
        """Every registered component: ``components`` (ours), and the original's
        ``EnsembleState``: ``ingesters``/``workers``/``reducer`` with versions and counters,
        ``parameters_version`` (each parameter's value id) and the parameters' hash."""
        components: list[ComponentInfo] = await controller.store.components()
        stats = await controller.store.all_stats()
        parameters = await controller.parameters.state()
        return {
            "components": [c.model_dump(mode="json") for c in components],
            **ensemble_state(components, stats, rates, time.monotonic()),
            "controller_version": __version__,
            "parameters_version": original.parameters_version(
                list(parameters.declared), await controller.store.parameter_uuids()
            ),
            "parameters_revision": parameters.version,
            "parameters_hash": parameters.hash,
        }

    @router.get("/api/v1/status")
    async def status() -> dict[str, Any]:
        """The scan's state: the original's ``work_completed``, ``last_assigned``,
        ``assignment``, ``completed_events`` (every completed event's number: for a count,
        which costs nothing however long the scan, read ``/api/v1/progress``), ``finished``,
        ``processing_times``; ours alongside."""
        run = controller.run_state
        progress = _progress(controller)
        stats = await controller.store.all_stats() if run is not None else []
        ours: dict[str, Any] = {"active": False, "scan_id": None}
        if run is not None:
            ours = {
                "active": not progress["finished"],
                "scan_id": run.scan.scan_id,
                "stopped": run.scan.stopped,
                "aborted": run.scan.aborted,
                "progress": run.progress.model_dump(mode="json"),
            }
        return {
            **ours,
            "work_completed": dict(run.totals) if run is not None else {},
            "last_assigned": progress["last_assigned"],
            "assignment": original.assignment(run),
            "completed_events": original.completed_event_numbers(run),
            "finished": progress["finished"],
            "processing_times": original.processing_times(run, stats),
        }

    @router.get("/api/v1/progress")
    async def progress() -> dict[str, Any]:
        return _progress(controller)

    @router.get("/api/v1/load")
    async def load() -> dict[str, Any]:
        # per worker: shares completed and their rate over the last 1 s and 10 s
        run = controller.run_state
        if run is None:
            return {}
        return {w: share.model_dump() for w, share in run.load(time.monotonic()).items()}

    @router.post("/api/v1/stop")
    async def stop(full: bool = FULL) -> Optional[dict[str, Any]]:
        """Stop the current scan; the answer is ``null`` as the original's, with ``full=true``
        ``{"scan_id", "stopped"}`` (whether there was a scan to stop)."""
        await controller.stop_scan()
        run = controller.run_state
        if not full:
            return None
        return {"scan_id": run.scan.scan_id if run else None, "stopped": run is not None}


def controller_router(controller: ControllerHost) -> APIRouter:
    """All ``/api/v1`` routes of the controller but the dashboard's, logs and metrics."""
    router = APIRouter()
    sequence_routes(router, controller)
    state_routes(router, controller)
    parameter_routes(router, controller)
    return router


def create_app(
    host: ControllerHost, access: Optional[AccessPolicy] = None, lifespan: Optional[Lifespan] = None
) -> FastAPI:
    """The controller's app over ``host``: REST API, dashboard, logs, metrics, ``/docs``.

    ``access`` guards every route (default: open; docs/security.md). ``lifespan`` runs around
    serving; ``Controller.running`` there makes the server run the controller too
    (``dranspose.controller:app``), while the command line runs it itself and passes none.
    """
    app = guard(new_app(title="dranspose controller", version="1", lifespan=lifespan), access)
    install_error_handlers(app)

    async def redis_unavailable(request: Request, exc: Exception) -> Response:
        # an outage is the server's state, not a bug: say so, and that it is temporary
        return JSONResponse(
            {"detail": f"Redis at {host.store.url} is unavailable ({exc}); retry shortly"},
            status_code=503,
        )

    for unavailable in REDIS_UNAVAILABLE[:2]:  # redis' connection and timeout errors
        app.add_exception_handler(unavailable, redis_unavailable)
    app.include_router(dashboard_router(host))  # the web page at / and /api/v1/scan
    app.include_router(controller_router(host))  # /api/v1: scans, state, parameters
    app.include_router(observability_router(host))  # /metrics, /healthz
    app.include_router(logs_router(host.store))  # /api/v1/logs, /api/v1/log_stream
    return app

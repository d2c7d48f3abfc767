"""The reducer's HTTP API: its ``publish`` data (read-only) and the run-time parameters.

The same app serves a replay (``dranspose replay --port``) and the distributed reducer; both
plug in through :class:`ReducerHost`, and whoever runs them serves the app
(``dranspose.tools.serving``). Reading ``publish`` holds the reducer's
``publish_rlock`` when the payload defines one, so clients never see a half-updated tree.
"""

from __future__ import annotations

import contextlib
import math
import pickle
from typing import Any, Iterator, Optional, Protocol

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from dranspose.core.parameters import ParameterError, ParameterSet
from dranspose.core.protocol import ParameterName
from dranspose.http.auth import PUBLIC, AccessPolicy, guard
from dranspose.http.docs_pages import new_app
from dranspose.http.errors import RAW_BODY, install_error_handlers
from dranspose.http.h5grove_api import create_h5grove_router, publish_version
from dranspose.http.h5rest import create_h5_router
from dranspose.http.original import FULL
from dranspose.http.parameters_api import RAW_MEDIA_TYPE
from dranspose.http.viewer import create_viewer_router


class ReducerHost(Protocol):
    """What the API needs from whatever runs the reducer."""

    @property
    def reducer(self) -> Any: ...

    @property
    def parameters(self) -> ParameterSet: ...

    def set_parameter(self, name: str, data: bytes) -> ParameterSet: ...

    def status(self) -> dict[str, Any]: ...


class ReplayHost:
    """Adapts a :class:`dranspose.tools.replay.ReplayScan` to :class:`ReducerHost`."""

    component_name = "replay"

    def __init__(self, run: Any) -> None:
        self._run = run

    @property
    def reducer(self) -> Any:
        return self._run.reducer.payload.instance

    @property
    def parameters(self) -> ParameterSet:
        return self._run.parameters

    @property
    def calls(self) -> Any:
        """The run's ReducerCalls (its change count is the viewer's publish version)."""
        return self._run.reducer

    def set_parameter(self, name: str, data: bytes) -> ParameterSet:
        return self._run.set_parameter(name, data)

    def status(self) -> dict[str, Any]:
        summary = self._run.summary
        return {
            "events": summary.events,
            "results": summary.results,
            "failures": [f.describe() for f in summary.failures],
        }


def to_jsonable(obj: Any) -> Any:
    """Turn a ``publish`` tree into JSON data; NaN and infinities become ``null``.

    JSON has no NaN; browsers reject the ``NaN`` literal, so ``null`` is the portable choice.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fc":
            return to_jsonable(obj.tolist())
        return obj.tolist()
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, complex):
        return [to_jsonable(obj.real), to_jsonable(obj.imag)]
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf8", errors="backslashreplace")
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return repr(obj)


@contextlib.contextmanager
def publish_lock(reducer: Any) -> Iterator[None]:
    lock = getattr(reducer, "publish_rlock", None)
    if lock is None:
        yield
    else:
        with lock:
            yield


def _publish_node(publish: Any, path: str) -> Any:
    """The node of ``publish`` at ``path`` (``a/b/0``: keys of dicts, indices of sequences).

    Negative indices count from the end as in Python; 404 names the deepest prefix that exists
    plus the step that does not. Called with the publish lock held.
    """
    node = publish
    walked = []
    for part in [p for p in path.split("/") if p]:
        walked.append(part)
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif (
            isinstance(node, (list, tuple, np.ndarray))
            and part.lstrip("-").isdigit()
            and -len(node) <= int(part) < len(node)
        ):
            node = node[int(part)]
        else:
            raise HTTPException(404, f"publish has no entry '{'/'.join(walked)}'")
    return node


def _parameter_json(params: ParameterSet, name: ParameterName) -> dict[str, Any]:
    param = params[name]
    desc = params.descriptions.get(param.name)
    return {
        "name": param.name,
        "dtype": desc.dtype if desc else None,
        "description": desc.description if desc else None,
        "value": to_jsonable(param.value),
        "declared": desc is not None,
    }


def _parameter_routes(app: FastAPI, host: ReducerHost) -> None:
    """Read and set the run-time parameters (replay's; the live reducer's are the controller's)."""

    @app.get("/api/v1/parameters")
    def parameters() -> list[dict[str, Any]]:
        """Every parameter with its type, description and current value."""
        params = host.parameters
        return [_parameter_json(params, name) for name in params]

    @app.get("/api/v1/parameter/{name}")
    def get_parameter(name: str) -> Response:
        """The raw bytes of one parameter."""
        params = host.parameters
        if name not in params:
            raise HTTPException(404, f"unknown parameter {name!r}")
        return Response(params[ParameterName(name)].data or b"", media_type=RAW_MEDIA_TYPE)

    @app.post("/api/v1/parameter/{name}", openapi_extra=RAW_BODY)
    async def set_parameter(name: str, request: Request, full: bool = FULL) -> Any:
        """Set one parameter from the raw request body (replay; the distributed reducer's are
        set on the controller): the answer is the parameters' hash as a bare string, as the
        original answers, with ``full=true`` the parameter's record. A declared parameter's
        value must parse (422 with the reason); an undeclared name keeps raw bytes."""
        body = await request.body()
        try:
            params = host.set_parameter(name, body)
        except KeyError as exc:
            raise HTTPException(
                404, str(exc.args[0]) if exc.args else f"unknown parameter {name!r}"
            ) from exc
        except ParameterError as exc:
            raise HTTPException(422, str(exc)) from exc
        if not full:
            return params.hash
        return {**_parameter_json(params, ParameterName(name)), "parameters_hash": params.hash}


def create_app(host: ReducerHost, access: Optional[AccessPolicy] = None) -> FastAPI:
    """The reducer API for one host; ``access`` defaults to ``$DRANSPOSE_TOKEN`` (docs/security.md)."""
    app = guard(new_app(title="dranspose reducer", version="1"), access)
    install_error_handlers(app)

    @app.get("/api/v1/result/pickle")
    def result_pickle() -> Response:
        """The whole ``publish`` tree, pickled (for the payload's own Python tests)."""
        reducer = host.reducer
        with publish_lock(reducer):
            data = pickle.dumps(getattr(reducer, "publish", None))
        return Response(data, media_type="application/x.pickle")

    @app.get("/api/v1/result/{path:path}")
    def result(path: str) -> JSONResponse:
        """A subtree of ``publish`` as JSON; ``a/b`` selects ``publish["a"]["b"]``."""
        reducer = host.reducer
        if not hasattr(reducer, "publish"):
            raise HTTPException(404, "the reducer has no 'publish' attribute")
        with publish_lock(reducer):
            content = to_jsonable(_publish_node(reducer.publish, path))
        return JSONResponse(content)

    _parameter_routes(app, host)

    @app.get("/api/v1/status")
    def status(full: bool = FULL) -> Any:
        """``true`` while the reducer answers, as the original's; with ``full=true`` ours:
        the scan, its results and failures (replay: events, results, failures)."""
        return host.status() if full else True

    @app.get("/healthz", openapi_extra=PUBLIC)  # probes carry no token
    def healthz() -> dict[str, Any]:
        """Liveness and readiness: the API answers, so the reducer's event loop runs."""
        return {"status": "ok", "component": getattr(host, "component_name", "reducer")}

    # the same publish tree as an HDF5 domain for h5pyd and silx (served at the root)
    app.include_router(
        create_h5_router(
            lambda: getattr(host.reducer, "publish", None), lambda: publish_lock(host.reducer)
        )
    )
    # ... and over h5grove's API for the H5Web viewer at /viewer/ (dranspose/http/viewer.py)
    app.include_router(
        create_h5grove_router(
            lambda: getattr(host.reducer, "publish", None),
            lambda: publish_lock(host.reducer),
            lambda: publish_version(host),
        )
    )
    app.include_router(create_viewer_router())
    return app

"""The controller's parameter routes: declarations, raw values, and their versions.

The rules (what must parse, what is stored as raw bytes) are the controller's
(:mod:`dranspose.runtime.controller_parameters`, through
:class:`~dranspose.core.controller_parameters.ParameterBoard`); here they are only served: a value that does
not parse is a 422 with the reason, an unknown name a 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from dranspose.core.controller_parameters import CONTROLLER_PARAMETERS
from dranspose.core.parameters import ParameterError
from dranspose.http.controller_host import ControllerHost
from dranspose.http.errors import RAW_BODY
from dranspose.http.original import FULL

RAW_MEDIA_TYPE = "application/x.bytes"
"""The content type of a raw parameter value, the original dranspose's."""


def parameter_routes(router: APIRouter, host: ControllerHost) -> None:
    board = host.parameters  # the controller's declarations and values

    @router.get("/api/v1/parameters")
    async def parameters() -> list[dict[str, Any]]:
        """Every declared parameter and the pipeline's own (``dump_prefix``), sorted by name,
        with its current raw value."""
        state = await board.state()
        declared: dict[str, Any] = {
            n: p.model_dump(mode="json") for n, p in CONTROLLER_PARAMETERS.items()
        }
        declared.update(state.declared)
        raw = state.values
        return [
            {
                **desc,
                "data": raw[name].decode("utf8", "backslashreplace") if name in raw else None,
                "size": len(raw[name]) if name in raw else None,  # exact bytes
            }
            for name, desc in sorted(declared.items())
        ]

    @router.get("/api/v1/parameter/{name}")
    async def get_parameter(name: str) -> Response:
        """The raw value (``application/x.bytes``); a declared parameter never set: its default."""
        state = await board.state()
        if name in state.values:
            return Response(state.values[name], media_type=RAW_MEDIA_TYPE)
        default = board.default_bytes(name, state.declared)
        if default is None:
            raise HTTPException(404, f"unknown parameter {name!r}")
        return Response(default, media_type=RAW_MEDIA_TYPE)

    @router.post("/api/v1/parameter/{name}", openapi_extra=RAW_BODY)
    async def set_parameter(name: str, request: Request, full: bool = FULL) -> Any:
        """Set one parameter from the raw request body; the answer is the hash of the values
        now (a bare string, as the original answers), with ``full=true`` the parameter's record.

        A declared parameter's value must parse as its type (422 with the reason); a name no
        class declares is stored as raw bytes (payloads read ``parameters[name].data``).
        """
        try:
            update = await board.set(name, await request.body())
        except ParameterError as exc:
            raise HTTPException(422, str(exc)) from exc
        if not full:
            return update.parameters_hash
        return {
            "name": update.name,
            "version": update.version,
            "value": update.value,
            "declared": update.declared,
            "parameters_hash": update.parameters_hash,
        }

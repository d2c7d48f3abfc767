"""The controller's parameter routes: declarations, raw values, and their versions.

Values are stored as raw bytes in Redis; every worker and the reducer parse them against the
declarations of their classes. A declared parameter's value must parse as its type (422 with the
reason otherwise). A name no class declares is stored as raw bytes, as the original dranspose
stored it: payloads read such values (a poni file a control system uploads) with
``"poni_file" in parameters`` and ``parameters["poni_file"].data``; the size limit holds for
them too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Union

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from dranspose.core.parameters import (
    BinaryParameter,
    ParameterDescription,
    ParameterError,
    ParameterSet,
    ParameterType,
    StrParameter,
)
from dranspose.core.protocol import DUMP_PREFIX, ParameterName
from dranspose.http.errors import RAW_BODY
from dranspose.http.original import FULL

if TYPE_CHECKING:  # the controller imports this module; import its type only for checking
    from dranspose.runtime.controller import Controller

logger = logging.getLogger(__name__)

RAW_MEDIA_TYPE = "application/x.bytes"
"""The content type of a raw parameter value, the original dranspose's."""

CONTROLLER_PARAMETERS = {
    DUMP_PREFIX: StrParameter(
        name=DUMP_PREFIX,
        description="Prefix to dump ingester values: when set, every ingester started without "
        "--dump writes each scan's frames to <prefix><ingester>-<scan id>.cbors",
    )
}
"""Parameters of the pipeline itself, listed with the payloads' (the original lists them so).
They are no payload's: left out of the declarations components parse with, so a value set
reaches them as raw bytes and the parameters' hash is the same everywhere."""


async def declared_parameters(controller: Controller) -> dict[str, Any]:
    """Every declaration the components published (JSON), by name."""
    merged: dict[str, Any] = {}
    for items in (await controller.store.get_descriptions()).values():
        for item in items:
            merged[item["name"]] = item
    return merged


async def parameters_state(controller: Controller) -> tuple[int, str]:
    """The parameters' version and the hash of the values every component computes with."""
    version, raw = await controller.store.get_parameters()
    descriptions = {
        ParameterName(name): ParameterDescription.from_published(item)
        for name, item in (await declared_parameters(controller)).items()
    }
    try:
        return version, ParameterSet.from_raw(descriptions, raw, warn_undeclared=False).hash
    except ParameterError:  # a stored value the declarations refuse: no hash to compare with
        return version, ""


def _parser(name: str, declared: dict[str, Any]) -> Union[ParameterType, BinaryParameter]:
    if name in declared:
        return ParameterDescription.from_published(declared[name])
    if name in CONTROLLER_PARAMETERS:
        return CONTROLLER_PARAMETERS[ParameterName(name)]
    logger.warning(
        "parameter %r is declared by no worker or reducer class (declared: %s); "
        "stored as raw bytes for payloads that read parameters[%r].data",
        name,
        ", ".join(sorted(declared)) or "none",
        name,
    )
    return BinaryParameter(name=ParameterName(name))


def parameter_routes(router: APIRouter, controller: Controller) -> None:
    @router.get("/api/v1/parameters")
    async def parameters() -> list[dict[str, Any]]:
        """Every declared parameter and the pipeline's own (``dump_prefix``), sorted by name,
        with its current raw value."""
        declared: dict[str, Any] = {
            n: p.model_dump(mode="json") for n, p in CONTROLLER_PARAMETERS.items()
        }
        declared.update(await declared_parameters(controller))
        _, raw = await controller.store.get_parameters()
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
        _, raw = await controller.store.get_parameters()
        declared = await declared_parameters(controller)
        if name in raw:
            return Response(raw[name], media_type=RAW_MEDIA_TYPE)
        if name in declared or name in CONTROLLER_PARAMETERS:
            desc = _parser(name, declared)
            return Response(desc.to_bytes(desc.default), media_type=RAW_MEDIA_TYPE)
        raise HTTPException(404, f"unknown parameter {name!r}")

    @router.post("/api/v1/parameter/{name}", openapi_extra=RAW_BODY)
    async def set_parameter(name: str, request: Request, full: bool = FULL) -> Any:
        """Set one parameter from the raw request body; the answer is the hash of the values
        now (a bare string, as the original answers), with ``full=true`` the parameter's record.

        A declared parameter's value must parse as its type (422 with the reason); a name no
        class declares is stored as raw bytes (payloads read ``parameters[name].data``).
        """
        body = await request.body()
        declared = await declared_parameters(controller)
        try:
            value = _parser(name, declared).from_bytes(body)
        except ParameterError as exc:
            raise HTTPException(422, str(exc)) from exc
        version = await controller.store.set_parameter(name, body)
        controller.parameter_values[name] = body
        _, digest = await parameters_state(controller)
        if not full:
            return digest
        return {
            "name": name,
            "version": version,
            "value": value if not isinstance(value, bytes) else None,
            "declared": name in declared,
            "parameters_hash": digest,
        }

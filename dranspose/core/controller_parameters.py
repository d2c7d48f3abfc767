"""The controller's parameters as pure data: the pipeline's own declarations, one reading of
the values and declarations, what a change did, and the rules that merge published declarations
and pick a value's parser (:class:`dranspose.runtime.controller_parameters.ControllerParameters`
keeps them in Redis; the HTTP routes serve them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Union

from dranspose.core.parameters import (
    BinaryParameter,
    ParameterDescription,
    ParameterError,
    ParameterSet,
    ParameterType,
    StrParameter,
)
from dranspose.core.protocol import DUMP_PREFIX, ParameterName

__all__ = [
    "CONTROLLER_PARAMETERS",
    "Declarations",
    "ParameterBoard",
    "ParameterUpdate",
    "ParametersState",
    "merge_declarations",
    "parser_for",
    "values_hash",
]

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

Declarations = dict[str, dict[str, Any]]
"""Published declarations (JSON, as :meth:`ParameterDescription.from_published` reads them)."""


@dataclass(frozen=True)
class ParametersState:
    """One reading: the values, the declarations and the hash they give (in-process only: a
    dataclass, so megabytes of values are not validated on every ``/api/v1/config``)."""

    version: int
    values: dict[str, bytes]
    declared: Declarations
    hash: str
    """The hash of the values every component computes with; empty when a stored value does
    not parse as its declaration (no component has a hash to compare it with then)."""


@dataclass(frozen=True)
class ParameterUpdate:
    """What setting one value through the API did."""

    name: str
    version: int
    value: Any
    """The parsed value; ``None`` for raw bytes."""
    declared: bool
    parameters_hash: str


def merge_declarations(published: Mapping[str, list[dict[str, Any]]]) -> Declarations:
    """Every component's published declarations by name (a later component's wins)."""
    merged: Declarations = {}
    for items in published.values():
        for item in items:
            merged[item["name"]] = item
    return merged


def parser_for(name: str, declared: Declarations) -> Union[ParameterType, BinaryParameter]:
    """What parses a value of ``name``: its declaration, the pipeline's own, or raw bytes."""
    if name in declared:
        return ParameterDescription.from_published(declared[name])
    if name in CONTROLLER_PARAMETERS:
        return CONTROLLER_PARAMETERS[ParameterName(name)]
    return BinaryParameter(name=ParameterName(name))


def values_hash(declared: Declarations, values: Mapping[str, bytes]) -> str:
    """The hash the components compute for ``values`` (empty if one does not parse)."""
    descriptions = {
        ParameterName(name): ParameterDescription.from_published(item)
        for name, item in declared.items()
    }
    try:
        return ParameterSet.from_raw(descriptions, dict(values), warn_undeclared=False).hash
    except ParameterError:
        return ""


class ParameterBoard(Protocol):
    """The controller's parameters as its HTTP routes use them: read, default, set."""

    async def state(self) -> ParametersState: ...

    def default_bytes(self, name: str, declared: Declarations) -> Optional[bytes]: ...

    async def set(self, name: str, data: bytes) -> ParameterUpdate: ...

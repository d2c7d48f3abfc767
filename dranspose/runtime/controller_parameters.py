"""The controller's parameters: the declarations components publish and the values set here.

Values are stored as raw bytes in Redis; every worker and the reducer parse them against the
declarations of their classes. This module is the one place the controller merges the published
declarations and the one way a value is set, so the REST API, a parameter file given at start
and the restore after a Redis restart apply the same rules:

- a value set over the API for a declared parameter must parse as its type;
- a name no class declares is stored as raw bytes, as the original dranspose stored it
  (payloads read such values, a poni file a control system uploads, with
  ``parameters["poni_file"].data``); the size limit holds for it too;
- the values of a parameter file are only held to the size limit: workers publish their
  declarations once they run, which may be after the controller starts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Optional

from dranspose.core.controller_parameters import (
    CONTROLLER_PARAMETERS,
    Declarations,
    ParametersState,
    ParameterUpdate,
    merge_declarations,
    parser_for,
    values_hash,
)
from dranspose.core.parameters import (
    BinaryParameter,
)
from dranspose.core.protocol import ParameterName
from dranspose.io.store import Store

logger = logging.getLogger(__name__)


class ControllerParameters:
    """The parameters as the controller serves them; ``values_set`` survives a Redis restart."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.values_set: dict[str, bytes] = {}
        """Every value set so far (read back when the controller takes over): put back if
        Redis restarts empty."""

    async def load(self) -> None:
        """Take the values already stored (a predecessor's, or a parameter file's)."""
        _, self.values_set = await self.store.get_parameters()

    async def restore(self) -> None:
        """Put the values back into a Redis that restarted empty."""
        if self.values_set:
            await self.store.set_parameters(self.values_set)

    async def declarations(self) -> Declarations:
        return merge_declarations(await self.store.get_descriptions())

    async def state(self) -> ParametersState:
        version, values = await self.store.get_parameters()
        declared = await self.declarations()
        return ParametersState(
            version=version, values=values, declared=declared, hash=values_hash(declared, values)
        )

    async def set_initial(self, values: Mapping[str, bytes]) -> int:
        """Set the values of a parameter file before serving, all with one version bump (no
        component sees half of the file); only the size limit is checked (see the module)."""
        for name, data in values.items():
            BinaryParameter(name=ParameterName(name)).from_bytes(data)
        return await self._store(values)

    async def set(self, name: str, data: bytes) -> ParameterUpdate:
        """Set one value; :class:`ParameterError` when a declared parameter's does not parse."""
        declared = await self.declarations()
        if name not in declared and name not in CONTROLLER_PARAMETERS:
            logger.warning(
                "parameter %r is declared by no worker or reducer class (declared: %s); "
                "stored as raw bytes for payloads that read parameters[%r].data",
                name,
                ", ".join(sorted(declared)) or "none",
                name,
            )
        value = parser_for(name, declared).from_bytes(data)
        version = await self._store({name: data})
        _, values = await self.store.get_parameters()
        return ParameterUpdate(
            name=name,
            version=version,
            value=value if not isinstance(value, bytes) else None,
            declared=name in declared,
            parameters_hash=values_hash(declared, values),
        )

    async def _store(self, values: Mapping[str, bytes]) -> int:
        version = await self.store.set_parameters(values)
        self.values_set.update(values)
        return version

    def default_bytes(self, name: str, declared: Declarations) -> Optional[bytes]:
        """A declared (or the pipeline's own) parameter's default as raw bytes; None if unknown."""
        if name not in declared and name not in CONTROLLER_PARAMETERS:
            return None
        parser = parser_for(name, declared)
        return parser.to_bytes(parser.default)

"""``dranspose.protocol``: a public import path kept for payloads; the code lives in
:mod:`dranspose.core.protocol`."""

from dranspose.core.protocol import (  # noqa: F401
    StreamName,
    EventNumber,
    WorkerName,
    ReducerName,
    IngesterName,
    ParameterName,
    WorkerTag,
    Digest,
    BUILD_META_ENV,
    WorkParameter,
    BuildGitMeta,
    BuildMetaError,
    read_build_meta,
    PayloadState,
    WorkerState,
    ReducerState,
)

__all__ = [
    "StreamName",
    "EventNumber",
    "WorkerName",
    "ReducerName",
    "IngesterName",
    "ParameterName",
    "WorkerTag",
    "Digest",
    "BUILD_META_ENV",
    "WorkParameter",
    "BuildGitMeta",
    "BuildMetaError",
    "read_build_meta",
    "PayloadState",
    "WorkerState",
    "ReducerState",
]

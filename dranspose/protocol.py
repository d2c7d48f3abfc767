"""``dranspose.protocol``: a public import path kept for payloads; the code lives in
:mod:`dranspose.core.protocol`."""

from dranspose.core.protocol import (
    BUILD_META_ENV,
    BuildGitMeta,
    BuildMetaError,
    Digest,
    EventNumber,
    IngesterName,
    ParameterName,
    PayloadState,
    ReducerName,
    ReducerState,
    StreamName,
    WorkerName,
    WorkerState,
    WorkerTag,
    WorkParameter,
    read_build_meta,
)

__all__ = [
    "BUILD_META_ENV",
    "BuildGitMeta",
    "BuildMetaError",
    "Digest",
    "EventNumber",
    "IngesterName",
    "ParameterName",
    "PayloadState",
    "ReducerName",
    "ReducerState",
    "StreamName",
    "WorkParameter",
    "WorkerName",
    "WorkerState",
    "WorkerTag",
    "read_build_meta",
]

"""Identifier types and small records shared by every component.

Payloads import the id types from here (``from dranspose.core.protocol import EventNumber``), so the
names are part of the public contract. Everything here is plain data: no I/O.
"""

from __future__ import annotations

import json
import os
from typing import Any, NewType, Optional

from pydantic import BaseModel, ConfigDict, ValidationError

StreamName = NewType("StreamName", str)
EventNumber = NewType("EventNumber", int)
WorkerName = NewType("WorkerName", str)
ReducerName = NewType("ReducerName", str)
IngesterName = NewType("IngesterName", str)
ParameterName = NewType("ParameterName", str)
WorkerTag = NewType("WorkerTag", str)
Digest = NewType("Digest", str)

BUILD_META_ENV = "BUILD_META_FILE"
"""Environment variable naming the JSON file with the payload's build provenance."""


class WorkParameter(BaseModel):
    """One parameter as a payload sees it: raw ``data`` bytes and the typed ``value``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: ParameterName
    data: Optional[bytes] = None
    value: Optional[Any] = None


class BuildGitMeta(BaseModel):
    """Where the payload code came from; reducers store it next to their results."""

    model_config = ConfigDict(extra="allow")

    commit_hash: Optional[str] = None
    branch_name: Optional[str] = None
    timestamp: Optional[str] = None
    repository_url: Optional[str] = None


class BuildMetaError(ValueError):
    """The build provenance file exists but cannot be read."""


def read_build_meta(environ: Optional[dict[str, str]] = None) -> Optional[BuildGitMeta]:
    """Read the provenance file named by ``$BUILD_META_FILE``; ``None`` when it is not set.

    A set variable pointing at a missing or malformed file is an error, not a silent ``None``:
    results written without their provenance cannot be trusted later.
    """
    env = os.environ if environ is None else environ
    path = env.get(BUILD_META_ENV)
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            raw = json.load(fh)
        return BuildGitMeta.model_validate(raw)
    except OSError as exc:
        raise BuildMetaError(f"{BUILD_META_ENV}={path!r}: cannot open ({exc.strerror})") from exc
    except (json.JSONDecodeError, ValidationError) as exc:
        raise BuildMetaError(
            f"{BUILD_META_ENV}={path!r}: expected a JSON object with commit_hash, branch_name, "
            f"timestamp, repository_url ({exc})"
        ) from exc


class PayloadState(BaseModel):
    """What a payload instance learns about the component hosting it."""

    name: str
    dranspose_version: str
    mapreduce_version: Optional[BuildGitMeta] = None


class WorkerState(PayloadState):
    """The ``state`` given to a worker class."""

    name: WorkerName
    tags: list[WorkerTag] = [WorkerTag("generic")]


class ReducerState(PayloadState):
    """The ``state`` given to a reducer class."""

    name: ReducerName

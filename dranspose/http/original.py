"""The original dranspose 0.2.0's answers that ours cannot give by merely adding keys.

Control clients written for the original (scan macros, device servers, beamline pages) parse its
answers unchanged; our own clients read our fields. Where both fit in one JSON object, the
routes answer a superset. Where the original's value differs in *kind* from ours, it is built
here from what our controller knows:

- ``GET /api/v1/sequence`` (and its alias ``GET /api/v1/mapping``): each part as
  ``{"mapping": {stream: ...}}`` and the reserved first/last event as the part
  ``reserved_start_end`` around the sequence; our request verbatim under ``request``;
- ``GET /api/v1/status``: ``completed_events`` as the list of completed event numbers,
  ``assignment`` (virtual constraints bound to workers), ``processing_times`` per worker;
- ``GET /api/v1/config``: ``parameters_version`` as ``{name: uuid}``.

Where the original answered a bare value (``POST /api/v1/parameter/{name}``: the parameters'
hash; ``POST /api/v1/stop``: ``null``; the reducer's ``GET /api/v1/status``: ``true``), that bare
value is the default answer and ours comes with ``?full=true`` (:data:`FULL`): the original's
clients cannot change their calls, ours can (docs/rest-api.md).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Optional

from fastapi import Query

from dranspose.core.coordination import ComponentKind
from dranspose.core.scan_account import ScanAccount
from dranspose.core.stats import ComponentStats

FULL: Any = Query(
    False,
    description="answer with our record instead of the original dranspose's bare value "
    "(which its control clients parse)",
)
"""The ``full`` query flag of the routes whose default answer is the original's bare value."""

RESERVED_PART = "reserved_start_end"
"""The original's name of the part holding a scan's first and last event."""


def sequence_record(run: ScanAccount) -> dict[str, Any]:
    """The current trigger map as the original's ``GET /api/v1/sequence`` answers it, with ours
    (``scan_id``, ``events``, ``workers``, ``retry_lost``, ``request``) alongside."""
    assert run.request is not None
    request = run.request.model_dump(mode="json")
    parts: dict[str, Any] = {name: {"mapping": part} for name, part in request["parts"].items()}
    streams = sorted({stream for part in request["parts"].values() for stream in part})
    tags = sorted(
        {
            tag
            for part in request["parts"].values()
            for events in part.values()
            for event in events
            for virtual in event or []
            for tag in virtual.get("tags", ["generic"])
        }
        or {"generic"}
    )
    # the first and last event go to every worker with any of the map's tags, on every stream
    parts[RESERVED_PART] = {
        "mapping": {s: [[{"tags": [t], "constraint": None} for t in tags]] for s in streams}
    }
    return {
        "scan_id": run.scan.scan_id,
        "events": run.scan.n_events,
        "workers": run.scan.workers,
        "retry_lost": run.scan.retry_lost,
        "request": request,
        "parts": parts,
        "sequence": [RESERVED_PART, *request["sequence"], RESERVED_PART],
    }


def completed_event_numbers(run: Optional[ScanAccount]) -> list[int]:
    """Events every share of which completed, in order (failed and lost ones are not)."""
    if run is None:
        return []
    excluded = set(run.failed_events).union(run.progress.lost)
    return [event for event in run.accounted if event not in excluded]


def assignment(run: Optional[ScanAccount]) -> list[dict[str, str]]:
    """The original's ``assignment``: per active map, virtual constraint -> bound worker."""
    if run is None or run.assigner is None:
        return []
    return [{str(c): str(w) for c, w in sorted(run.assigner.bindings.items())}]


def processing_times(
    run: Optional[ScanAccount], stats: Iterable[ComponentStats]
) -> dict[str, dict[str, Any]]:
    """Per worker of the scan: seconds in the payload (the original's ``custom_code``) and the
    events that took, since the worker started (the original kept every batch's times)."""
    if run is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for s in stats:
        if s.kind == ComponentKind.worker and s.name in run.totals:
            calls = sum(s.processing.counts) if s.processing is not None else 0
            out[s.name] = {"custom_code": s.busy_seconds, "no_events": calls}
    return out


def _default_uuid(name: str) -> str:
    """A fixed UUID4 for a parameter never set: derived from its name, so it stays the same."""
    digest = hashlib.sha256(b"dranspose parameter default\0" + name.encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def parameters_version(names: Iterable[str], stored: Mapping[str, str]) -> dict[str, str]:
    """The original's ``parameters_version``: each parameter's value id, new on every set."""
    out = {name: str(uuid.UUID(hex_id)) for name, hex_id in stored.items()}
    for name in names:
        out.setdefault(name, _default_uuid(name))
    return dict(sorted(out.items()))

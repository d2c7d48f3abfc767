"""``dranspose.replay``: a public import path kept for payloads; the code lives in
:mod:`dranspose.tools.replay`."""

from dranspose.tools.replay import (
    DEFAULT_TICK_INTERVAL,
    DEFAULT_TIMER_INTERVAL,
    EventNumber,
    Failure,
    PathLike,
    ReplayScan,
    ReplaySummary,
    logger,
    merge_partials,
    replay,
    run_replay,
)

__all__ = [
    "DEFAULT_TICK_INTERVAL",
    "DEFAULT_TIMER_INTERVAL",
    "EventNumber",
    "Failure",
    "PathLike",
    "ReplayScan",
    "ReplaySummary",
    "logger",
    "merge_partials",
    "replay",
    "run_replay",
]

"""``dranspose.replay``: a public import path kept for payloads; the code lives in
:mod:`dranspose.tools.replay`."""

from dranspose.tools.replay import (  # noqa: F401
    logger,
    PathLike,
    Failure,
    ReplaySummary,
    merge_partials,
    ReplayRun,
    run_replay,
    replay,
    EventNumber,
    DEFAULT_TICK_INTERVAL,
    DEFAULT_TIMER_INTERVAL,
)

__all__ = [
    "logger",
    "PathLike",
    "Failure",
    "ReplaySummary",
    "merge_partials",
    "ReplayRun",
    "run_replay",
    "replay",
    "EventNumber",
    "DEFAULT_TICK_INTERVAL",
    "DEFAULT_TIMER_INTERVAL",
]

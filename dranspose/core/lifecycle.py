"""The life cycle of one scan: its phases, who moves it from one to the next, what each waits for.

The end of a scan spans four processes; this module writes the rules down in one place, and the
controller's REST answers and the dashboard read a scan's phase from here. The controller owns
"scan ended": only it sets ``Progress.finished`` (every event accounted for) and
``Progress.reducer_finished`` (it saw the reducer's done mark for the scan).

======== ===================================================== =========================================
phase    entered when (who moves it)                            who waits for what in it
======== ===================================================== =========================================
idle     no scan was started yet                                components poll the scan record
running  ``POST /api/v1/sequence`` (controller writes the       ingesters forward, workers ask for and
         scan record and the first assignments)                 process events, the reducer folds
stopping ``POST /api/v1/stop`` or a fault (controller marks     the controller counts late reports until
         the scan stopped / aborted)                            every final report is in, the reducer
                                                                is done, or the grace has passed; no
                                                                worker joins any more
reducing every event is accounted for (controller sets          the reducer: every joined worker's done
         ``finished``)                                          mark or its death, then ``finished``
                                                                (at most 2 s); then ``finish`` runs
finished the reducer's done mark is seen (controller sets       nothing: results are complete
         ``reducer_finished``)
stopped  as finished, for a stopped or aborted scan             nothing: unprocessed / lost events are
                                                                listed with their reasons
======== ===================================================== =========================================

A new scan may replace the current one in any phase; the replaced scan's components leave it.
How each component follows the scans (joining, leaving, the messages that come early) is the
state machine of :mod:`dranspose.runtime.session`; a worker joins through the store only while
the scan runs, so a stopped scan's set of joined workers is final and the reducer waits for
exactly those.
A client polling the phase may see one skipped (the controller can account for the last events
and see the reducer's mark in one step). Pure code: no I/O, no clock.
"""

from __future__ import annotations

import enum
from typing import Optional

from dranspose.core.coordination import Progress, ScanInfo


class ScanPhase(str, enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    STOPPING = "stopping"
    REDUCING = "reducing"
    FINISHED = "finished"
    STOPPED = "stopped"


TRANSITIONS: dict[ScanPhase, frozenset[ScanPhase]] = {
    ScanPhase.IDLE: frozenset({ScanPhase.RUNNING}),
    ScanPhase.RUNNING: frozenset({ScanPhase.STOPPING, ScanPhase.REDUCING}),
    ScanPhase.STOPPING: frozenset({ScanPhase.REDUCING}),
    ScanPhase.REDUCING: frozenset({ScanPhase.FINISHED, ScanPhase.STOPPED}),
    ScanPhase.FINISHED: frozenset(),
    ScanPhase.STOPPED: frozenset(),
}
"""The phases a scan may move to next (besides being replaced by a new scan)."""


def reachable(start: ScanPhase) -> frozenset[ScanPhase]:
    """Every phase a scan in ``start`` can be in later (itself included)."""
    seen, todo = {start}, [start]
    while todo:
        for following in TRANSITIONS[todo.pop()]:
            if following not in seen:
                seen.add(following)
                todo.append(following)
    return frozenset(seen)


def phase(scan: Optional[ScanInfo], progress: Progress) -> ScanPhase:
    """The phase of ``scan`` given the controller's ``progress`` of it."""
    if scan is None:
        return ScanPhase.IDLE
    if progress.finished and progress.reducer_finished:
        return ScanPhase.STOPPED if scan.stopped else ScanPhase.FINISHED
    if progress.finished:
        return ScanPhase.REDUCING
    return ScanPhase.STOPPING if scan.stopped else ScanPhase.RUNNING


def is_over(scan: Optional[ScanInfo], progress: Progress) -> bool:
    """Whether the scan has ended for good: every event accounted for and ``finish`` has run."""
    return phase(scan, progress) in (ScanPhase.FINISHED, ScanPhase.STOPPED)

"""The controller's account of one scan: which events are released, done, failed, lost.

Pure bookkeeping, no I/O: the controller feeds it worker reports and deaths and publishes what
it returns. It holds the rules of the delivery guarantee (docs/delivery-guarantee.md): every
event ends up completed, failed, lost (with a reason) or, after an operator's stop, unprocessed.
"""

from __future__ import annotations

import logging
import time
from typing import Iterable, Optional

from pydantic import BaseModel, Field

from dranspose.core.coordination import AssignedRun, FailedEvent, Progress, ScanInfo
from dranspose.core.protocol import EventNumber, StreamName, WorkerName
from dranspose.core.ranges import RangeSet
from dranspose.core.rates import RateWindow
from dranspose.core.triggermap import (
    Assigner,
    Assignment,
    AssignmentError,
    SequenceRequest,
    TriggerMap,
)

logger = logging.getLogger(__name__)

ABORT_GRACE_SECONDS = 10.0
"""After an abort or a stop, how long the controller still counts late reports before it closes
the account (it stops waiting earlier once every final report is in or the reducer has finished
the scan)."""
LOAD_WINDOWS = (1.0, 10.0)
"""The spans, in seconds, of the two rates ``/api/v1/load`` lists per worker."""
RATE_SAMPLES = 200
"""Completion samples kept per worker for its rates (``/api/v1/load``)."""


class WorkerLoad(BaseModel):
    """One worker's share of the scan as ``GET /api/v1/load`` lists it."""

    completed: int = Field(description="event shares the worker reported done in this scan")
    rate_1s: float = Field(description="its shares per second over the last second")
    rate_10s: float = Field(description="its shares per second over the last ten seconds")


def _destinations(assignment: Assignment) -> set[WorkerName]:
    """Every worker that gets a frame of this event."""
    return {w for names in assignment.streams.values() for w in names}


class ScanAccount:
    """The controller's view of one scan: assigner, per-event bookkeeping, progress.

    A successor controller resumes a scan its predecessor left running with the account rebuilt
    from Redis (``dranspose.core.scan_resume.resume``). One it cannot resume (:meth:`recover`)
    has no assigner: it is aborted at once and only counts what the workers still report.
    """

    def __init__(
        self,
        scan: ScanInfo,
        trigger_map: Optional[TriggerMap],
        request: Optional[SequenceRequest],
        workers: dict[WorkerName, set[str]],
        ingesters: Optional[dict[str, list[StreamName]]] = None,
    ) -> None:
        self.scan = scan
        self.trigger_map = trigger_map
        self.request = request
        self.assigner = Assigner(trigger_map, workers) if trigger_map is not None else None
        self.ingesters = ingesters or {}
        """Ingesters serving this scan: name -> streams (their instances are in ``scan``)."""
        self.closing_deadline: Optional[float] = None
        self.reporters: set[str] = set()
        """Workers that reported in this scan (asking for work is the first report)."""
        self.final_reports: set[str] = set()
        self.redis_run_id: Optional[str] = None
        """The Redis server that holds this scan's streams (a restart empties them)."""
        self.pending: dict[int, set[WorkerName]] = {}
        """A recovered run's released events and the workers that still owe them (a run with an
        assigner asks the assigner)."""
        self.closed = False
        """Every event is accounted for (:meth:`close`): later completions change nothing."""
        self.progress = Progress(scan_id=scan.scan_id, total=scan.n_events)
        self.accounted = RangeSet()
        """Settled events, as ranges: memory grows with the gaps, not with the scan's length."""
        self.failed_events: set[int] = set()
        self.failures_seen: set[tuple[int, str]] = set()
        self.rates: dict[WorkerName, RateWindow] = {w: self._rate_window() for w in workers}
        """Each worker's completed shares over time (:meth:`sample_rate`, :meth:`load`)."""
        self.totals: dict[WorkerName, int] = dict.fromkeys(workers, 0)
        self.reports_from = "0"
        """Where the scan loop reads the report stream from: a resumed account
        (``dranspose.core.scan_resume``) was rebuilt from the reports before it."""
        self.open_requests: dict[WorkerName, int] = {}
        """A resumed account's requests its predecessor did not answer: worker -> events wanted."""

    @classmethod
    def recover(cls, scan: ScanInfo, released: list[Assignment], reason: str) -> ScanAccount:
        """The account of a scan a previous controller left running, aborted for ``reason``.

        ``released`` are the events the predecessor published (read back from Redis): the ones
        with destinations wait for those workers' reports, the others are settled at once.
        """
        run = cls(scan, None, None, {})
        run.released(released)
        run.abort(reason)
        return run

    @staticmethod
    def _rate_window() -> RateWindow:
        return RateWindow(max(LOAD_WINDOWS), maxlen=RATE_SAMPLES)

    def sample_rate(self, worker: WorkerName, now: float) -> None:
        """Note ``worker``'s completed shares as of ``now`` (after each of its reports)."""
        window = self.rates.get(worker)
        if window is None:
            window = self.rates[worker] = self._rate_window()
        window.add(now, self.totals.get(worker, 0))

    def load(self, now: float) -> dict[WorkerName, WorkerLoad]:
        """Every worker's completed shares and their recent rates (0 while it reports none)."""
        return {
            worker: WorkerLoad(
                completed=self.totals.get(worker, 0),
                rate_1s=window.rate(now, LOAD_WINDOWS[0]) or 0.0,
                rate_10s=window.rate(now, LOAD_WINDOWS[1]) or 0.0,
            )
            for worker, window in self.rates.items()
        }

    def released(self, assignments: list[Assignment]) -> list[Assignment]:
        """Account for events just released, one by one (``assigner.request`` returned them, or
        a successor controller read them back: :meth:`recover`); the controller's scan loop
        uses :meth:`released_runs`."""
        nothing = 0
        for a in assignments:
            destinations = _destinations(a)
            if destinations and self.assigner is None:
                self.pending[a.event_number] = destinations
            elif not destinations:  # every frame of this event is discarded: nothing to wait for
                nothing += self._account(a.event_number)
        self.progress.completed += nothing
        return list(assignments)

    def released_runs(self, runs: list[AssignedRun]) -> list[AssignedRun]:
        """Account for runs of events just released (``assigner.request_runs`` returned them):
        the assigner keeps who owes what; only events without any destination settle here."""
        nothing = 0
        for run in runs:
            if not any(run.streams.values()):
                nothing += sum(self._account(event) for event in run.events())
        self.progress.completed += nothing
        return runs

    @property
    def confirmed_below(self) -> int:
        """Every event below this one is accounted for (ingesters drop kept frames below it)."""
        return self.accounted.first_missing()

    def _account(self, event: int) -> bool:
        return self.accounted.add(event)

    def _settle(self, event: int) -> None:
        """No share of ``event`` is outstanding: it is done, unless a share of it failed.

        total = completed + failed + lost: a failed event is reported, not counted as done.
        """
        if self._settles(event):
            self.progress.completed += 1

    def _settles(self, event: int) -> bool:
        """Account for ``event``; whether it counts as completed (see :meth:`_settle`)."""
        return self._account(event) and event not in self.failed_events

    def completed(self, worker: WorkerName, event: int, failed: bool = False) -> None:
        """``worker`` is done with its share of ``event``; the event is done when all are."""
        if self._share_done(worker, event, failed):
            self.progress.completed += 1

    def completed_all(self, worker: WorkerName, events: Iterable[int]) -> None:
        """:meth:`completed` for each of a report's events; the progress model (a pydantic
        object, whose every assignment is a Python call) is updated once."""
        done = 0
        for event in events:
            done += self._share_done(worker, event, False)
        self.progress.completed += done

    def _share_done(self, worker: WorkerName, event: int, failed: bool) -> bool:
        """Count ``worker``'s share of ``event`` done; whether the event is now completed."""
        if self.assigner is None:  # recovered run: ``pending`` alone says who still owes what
            waiting = self.pending.get(event)
            if waiting is None or worker not in waiting:
                return False
            waiting.discard(worker)
            settled = not waiting
            if settled:
                del self.pending[event]
        else:
            try:
                settled = self.assigner.complete(event, worker)
            except AssignmentError:
                # reports are at-least-once: a resent completion is already counted
                logger.debug(
                    "worker %s reported event %d again or without owning it", worker, event
                )
                return False
        self.totals[worker] = self.totals.get(worker, 0) + 1
        if failed:
            self.failed_events.add(event)
        if not settled or self.closed:
            return False
        return self._settles(event)

    def failed(self, failure: FailedEvent) -> None:
        # reports are at-least-once (a worker resends one interrupted mid-write): count once
        key = (failure.event_number, failure.worker)
        if key in self.failures_seen:
            return
        self.failures_seen.add(key)
        self.progress.failed.append(failure)
        self.completed(WorkerName(failure.worker), failure.event_number, failed=True)

    def lost(self, worker: WorkerName, reason: str) -> list[Assignment]:
        """A worker died: its unfinished events are lost, or re-assigned with ``retry_lost``.

        Returns the re-delivery assignments to publish.
        """
        if self.assigner is None:  # nobody to hand anything to: all it owed is lost
            self._lost_without_assigner(worker, reason)
            return []
        dropped = self.assigner.drop_worker(worker, redeliver=self.scan.retry_lost)
        for assignment in dropped.moved:
            self.progress.redelivered.append(assignment.event_number)
        lost = set(dropped.lost)
        # events nobody waits for any more: lost, or (a broadcast share that a survivor also
        # got) settled; a lost share of an event others still owe settles with them
        for event in dropped.settled:
            if event in lost:
                self._mark_lost(event, reason)
            else:
                self._settle(event)
        self.scan.workers = [w for w in self.scan.workers if w != worker]
        return dropped.moved

    def _lost_without_assigner(self, worker: WorkerName, reason: str) -> None:
        for event in [e for e, waiting in self.pending.items() if worker in waiting]:
            waiting = self.pending[event]
            waiting.discard(worker)
            if not waiting:
                del self.pending[event]
                self._mark_lost(event, reason)
        self.scan.workers = [w for w in self.scan.workers if w != worker]

    def undeliverable(self, report: FailedEvent) -> None:
        """A sender cannot deliver an event (e.g. an ingester no longer holds its frames)."""
        self.pending.pop(report.event_number, None)
        self._mark_lost(report.event_number, f"{report.worker}: {report.reason}")

    def _mark_lost(self, event: int, reason: str) -> None:
        if self._account(event):
            self.progress.lost.append(EventNumber(event))
            self.progress.lost_reason[str(event)] = reason

    def abort(self, reason: str) -> None:
        """Cut the scan short after a fault; what is not reported within the grace is lost."""
        if self.scan.aborted is None:
            self.scan.aborted = reason
            self.progress.aborted = reason
        self.stop()

    def stop(self) -> None:
        """The operator ends the scan; what is not reported within the grace is unprocessed."""
        self.scan.stopped = True
        if self.closing_deadline is None:
            self.closing_deadline = time.monotonic() + ABORT_GRACE_SECONDS

    def close(self) -> None:
        """Account for every event not accounted for yet: lost after an abort (with its reason),
        listed as unprocessed ranges after an operator's stop (a long scan stopped early would
        otherwise make millions of entries)."""
        if self.scan.aborted is not None:
            reason = f"scan aborted: {self.scan.aborted}"
            for first, last in list(self.accounted.missing(self.progress.total)):
                for event in range(first, last + 1):
                    self._mark_lost(event, reason)
        else:
            ranges = [[first, last] for first, last in self.accounted.missing(self.progress.total)]
            self.progress.unprocessed = ranges
            if ranges:
                self.progress.unprocessed_reason = (
                    "the scan was stopped before these events were processed"
                )
        self.pending.clear()
        self.closed = True

    @property
    def reports_in(self) -> bool:
        """After a stop or abort: no report that could still count an event is outstanding.

        Only a worker that asked for work can have been given any; each of those still in the
        scan sends a final report when it leaves it.
        """
        live = self.reporters & set(self.scan.workers)
        return self.all_accounted or live <= self.final_reports

    @property
    def all_accounted(self) -> bool:
        return len(self.accounted) >= self.progress.total

"""A successor controller's account of a scan its predecessor left running, rebuilt from Redis.

The predecessor wrote everything a successor needs while it ran: the scan's :class:`AccountRecord`
(the trigger map and the workers' tags and ingesters it started with, once per scan), the
assignment stream (every released run, with the workers whose requests each batch answered) and
the workers wrote the report stream (requests, completions, failures). :class:`Ledger` folds those
two streams, read in chunks, into per-worker ranges of event numbers (memory grows with the
batches and the gaps, not with the events) and :func:`resume` turns the ledger into a live
:class:`ScanAccount` whose assigner holds the same bindings, owed events and release point as the
predecessor's: completed events stay completed, events a live worker still owes stay with it, a
worker the predecessor dropped owes nothing (its events were lost or moved), the rest is assigned
as usual. Pure code, no I/O: ``dranspose.runtime.controller`` reads the streams.
"""

from __future__ import annotations

import bisect
import json
import time
from typing import Any, Iterable, Optional, Sequence

from pydantic import BaseModel, Field, ValidationError

from dranspose.core.coordination import AssignedRun, FailedEvent, Progress, ScanInfo, WorkerReport
from dranspose.core.protocol import EventNumber, ScanId, StreamName, WorkerName
from dranspose.core.scan_account import ScanAccount
from dranspose.core.triggermap import SequenceRequest, TriggerMap, TriggerMapError
from dranspose.core.triggermap.resume import OwedEvents, restore_assigner

ACCOUNT_VERSION = 1
"""Version of :class:`AccountRecord` and of the streams' meaning; a successor that finds another
version aborts the scan rather than guess."""

Ranges = list[tuple[int, int]]
"""Half-open ``[start, end)`` ranges of event numbers, sorted and disjoint once merged."""


class ResumeError(Exception):
    """The scan cannot be resumed (the message says why); the successor aborts it."""


class AccountRecord(BaseModel):
    """What a successor needs besides the scan's streams, written once when the scan starts."""

    version: int = ACCOUNT_VERSION
    scan_id: ScanId
    request: dict[str, Any] = Field(description="the trigger map as it was posted (validated)")
    workers: dict[WorkerName, list[str]] = Field(description="workers at the start and their tags")
    ingesters: dict[str, list[StreamName]] = Field(description="ingesters serving the scan")


def record_of(
    scan: ScanInfo,
    request: SequenceRequest,
    workers: dict[WorkerName, set[str]],
    ingesters: dict[str, list[StreamName]],
) -> AccountRecord:
    return AccountRecord(
        scan_id=scan.scan_id,
        request=request.model_dump(mode="json"),
        workers={w: sorted(tags) for w, tags in workers.items()},
        ingesters=ingesters,
    )


def parse_record(raw: Optional[bytes]) -> AccountRecord:
    """The scan's account record as stored; ResumeError if there is none or it is another
    version (checked before the fields: another version may have other fields)."""
    if raw is None:
        raise ResumeError("it has no account record (a controller of an older version started it)")
    try:
        version = json.loads(raw).get("version")
    except (ValueError, AttributeError) as exc:
        raise ResumeError(f"its account record is not a JSON object ({exc})") from exc
    if version != ACCOUNT_VERSION:
        raise ResumeError(
            f"its account record is version {version}; this controller reads version "
            f"{ACCOUNT_VERSION}"
        )
    try:
        return AccountRecord.model_validate_json(raw)
    except ValidationError as exc:
        raise ResumeError(f"its account record is incomplete: {exc.errors()[0]['msg']}") from exc


def entry_id(raw: str) -> tuple[int, int]:
    """A stream entry id ``ms-seq`` as a comparable pair."""
    ms, _, seq = raw.partition("-")
    return int(ms), int(seq or 0)


def ranges_of(numbers: Sequence[int]) -> Ranges:
    """The numbers as merged ranges; a sorted run of consecutive numbers (what a worker reports
    most of the time) is recognised by one comparison in C."""
    if not numbers:
        return []
    first, count = numbers[0], len(numbers)
    if numbers[-1] - first + 1 == count and list(numbers) == list(range(first, first + count)):
        return [(first, first + count)]
    out: Ranges = []
    for n in sorted(set(numbers)):
        if out and out[-1][1] == n:
            out[-1] = (out[-1][0], n + 1)
        else:
            out.append((n, n + 1))
    return out


def merged(ranges: Iterable[tuple[int, int]]) -> Ranges:
    """Sorted, overlapping or touching ranges joined."""
    out: Ranges = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(have: Ranges, remove: Ranges) -> Ranges:
    """``have`` without ``remove`` (both merged): one walk over both lists."""
    out: Ranges = []
    j = 0
    for start, end in have:
        while j < len(remove) and remove[j][1] <= start:
            j += 1
        k = j
        while k < len(remove) and remove[k][0] < end:
            if remove[k][0] > start:
                out.append((start, remove[k][0]))
            start = max(start, remove[k][1])
            k += 1
        if start < end:
            out.append((start, end))
    return out


def _destinations(run: AssignedRun) -> set[WorkerName]:
    return {w for names in run.streams.values() for w in names}


class Ledger:
    """The scan's two streams folded, chunk by chunk, into what :func:`resume` needs."""

    def __init__(self) -> None:
        self.runs: list[AssignedRun] = []
        """Released runs in release order (consecutive from event 0)."""
        self.starts: list[int] = []
        self.shapes: dict[tuple[tuple[str, tuple[str, ...]], ...], dict[Any, Any]] = {}
        self.redelivered: dict[int, AssignedRun] = {}
        """Re-delivered events (``--retry-lost``): the last run that moved each."""
        self.released: dict[WorkerName, Ranges] = {}
        self.done: dict[WorkerName, Ranges] = {}
        self.answers: dict[WorkerName, tuple[int, int]] = {}
        self.requests: dict[WorkerName, tuple[tuple[int, int], int]] = {}
        self.failures: dict[tuple[int, str], FailedEvent] = {}
        self.undeliverable: list[FailedEvent] = []
        self.reporters: set[str] = set()
        self.final_reports: set[str] = set()
        self.frontier = 0
        self.reports_last_id = "0"
        self.gap: Optional[str] = None
        """Why the published runs do not cover every released event (a trimmed stream)."""

    def assignments(self, raw_id: str, runs: list[AssignedRun], answered: Iterable[str]) -> None:
        """One entry of the assignment stream. Runs of the same destinations share one
        ``streams`` dict (each was parsed into its own): a run costs a tuple, not a dict."""
        for parsed in runs:
            shape = tuple((s, tuple(names)) for s, names in parsed.streams.items())
            streams = self.shapes.setdefault(shape, parsed.streams)
            run = AssignedRun(parsed.first, parsed.length, streams, parsed.redelivered)
            if run.redelivered:
                for event in run.events():
                    self.redelivered[event] = run
            else:
                if run.first != self.frontier and self.gap is None:
                    self.gap = f"event {self.frontier} is missing from the published assignments"
                self.runs.append(run)
                self.starts.append(run.first)
                self.frontier = run.first + run.length
            for worker in _destinations(run):
                self.released.setdefault(worker, []).append((run.first, run.first + run.length))
        at = entry_id(raw_id)
        for name in answered:
            self.answers[WorkerName(name)] = at

    def report(self, raw_id: str, report: WorkerReport) -> None:
        """One report of the report stream (read in stream order)."""
        self.reports_last_id = raw_id
        worker = report.worker
        done = ranges_of(report.completed)
        for failure in report.failed:
            self.failures.setdefault((failure.event_number, failure.worker), failure)
            done.append((failure.event_number, failure.event_number + 1))
        if done:
            self.done.setdefault(worker, []).extend(done)
        self.undeliverable.extend(report.lost)
        (self.final_reports if report.final else self.reporters).add(worker)
        if report.want > 0:
            self.requests[worker] = (entry_id(raw_id), report.want)

    def run_at(self, event: int) -> AssignedRun:
        """The run that released ``event`` (re-delivered: the run that moved it last)."""
        moved = self.redelivered.get(event)
        if moved is not None:
            return moved
        return self.runs[bisect.bisect_right(self.starts, event) - 1]

    def owed(self) -> dict[WorkerName, Ranges]:
        """Per worker, the released events it has not reported done."""
        return {
            w: subtract(merged(ranges), merged(self.done.get(w, [])))
            for w, ranges in self.released.items()
        }

    def open_requests(self, workers: Iterable[WorkerName]) -> dict[WorkerName, int]:
        """The requests no batch answered yet, to answer now: a worker asks once at a time, so
        its last request is open if it came after the last batch that named it. Entry ids of
        the two streams come from one server clock; a request in the same millisecond as the
        answer counts as answered (never twice: the worker asks again within a second)."""
        out: dict[WorkerName, int] = {}
        for worker in workers:
            asked = self.requests.get(worker)
            answer = self.answers.get(worker)
            if asked is not None and (answer is None or asked[0][0] > answer[0]):
                out[worker] = asked[1]
        return out


def _shares(ledger: Ledger, owed: dict[WorkerName, Ranges], live: set[WorkerName]) -> OwedEvents:
    """The live workers' owed events split as the assigner keeps them: ranges of events for one
    worker alone (with their streams), records of events for several workers."""
    result = OwedEvents()
    for worker in sorted(live):
        for start, end in owed.get(worker, []):
            event = start
            while event < end:
                run = ledger.run_at(event)
                stop = min(end, run.first + run.length) if not run.redelivered else event + 1
                if run.redelivered or len(_destinations(run)) > 1:
                    for shared in range(event, stop):
                        result.add_shared(shared, ledger.run_at(shared).streams, worker)
                else:
                    result.add_solo(worker, event, stop, run.streams)
                event = stop
    return result


def resume(
    scan: ScanInfo,
    record: AccountRecord,
    ledger: Ledger,
    previous: Optional[Progress],
    now: Optional[float] = None,
) -> ScanAccount:
    """The live account of ``scan`` from its record and folded streams; raises ResumeError."""
    if record.version != ACCOUNT_VERSION:
        raise ResumeError(
            f"its account record is version {record.version}; this controller reads version "
            f"{ACCOUNT_VERSION}"
        )
    if record.scan_id != scan.scan_id:
        raise ResumeError(f"its account record belongs to scan {record.scan_id}")
    if ledger.gap is not None:
        raise ResumeError(ledger.gap)
    if previous is not None and previous.scan_id != scan.scan_id:
        previous = None
    try:
        trigger_map = TriggerMap(SequenceRequest.model_validate(record.request))
    except (ValidationError, TriggerMapError) as exc:
        raise ResumeError(f"its trigger map cannot be read back: {exc}") from exc
    if len(trigger_map) != scan.n_events:
        raise ResumeError(f"its map has {len(trigger_map)} events, the scan {scan.n_events}")
    live = {w for w in scan.workers if w in record.workers}
    tags = {w: set(record.workers[w]) for w in sorted(live)}
    owed = ledger.owed()
    shares = _shares(ledger, owed, live)
    try:
        assigner = restore_assigner(trigger_map, tags, ledger.frontier, ledger.run_at, shares)
    except (TriggerMapError, ValueError) as exc:
        raise ResumeError(str(exc)) from exc
    run = ScanAccount(scan, None, trigger_map.request, tags, record.ingesters)
    run.trigger_map, run.assigner = trigger_map, assigner
    _fill(run, ledger, owed, live, previous)
    run.progress.resumed = (previous.resumed if previous is not None else 0) + 1
    run.progress.resumed_at = time.time() if now is None else now
    run.reports_from = ledger.reports_last_id
    run.open_requests = ledger.open_requests(live)
    return run


def _fill(
    run: ScanAccount,
    ledger: Ledger,
    owed: dict[WorkerName, Ranges],
    live: set[WorkerName],
    previous: Optional[Progress],
) -> None:
    """The account's settled, lost, failed and completed events from the folded streams."""
    still_owed = merged(r for w in live for r in owed.get(w, []))
    accounted = run.accounted
    for start, end in subtract([(0, ledger.frontier)], still_owed):
        accounted.add_range(start, end)
    progress = run.progress
    reasons = dict(previous.lost_reason) if previous is not None else {}
    lost: dict[int, str] = {
        e: reasons.get(str(e), "lost") for e in (previous.lost if previous else [])
    }
    # A worker the predecessor dropped owes nothing now: what it alone owed is lost; its share
    # of an event a live worker also got settles with theirs, unless the predecessor had it lost
    # already (its snapshot, written at each death, says so: ``lost`` above)
    for worker, ranges in owed.items():
        if worker in live:
            continue
        for start, end in ranges:
            for event in range(start, end):
                alone = not _destinations(ledger.run_at(event)) & live
                if alone and event not in ledger.redelivered and event in accounted:
                    lost.setdefault(event, reasons.get(str(event), f"worker {worker} died"))
    for report in ledger.undeliverable:  # the sender no longer holds the event's frames
        if report.event_number not in accounted:
            lost.setdefault(report.event_number, f"{report.worker}: {report.reason}")
    for event in sorted(lost):
        accounted.add(event)  # a live worker may still report it: counted once, as lost
        progress.lost.append(EventNumber(event))
        progress.lost_reason[str(event)] = lost[event]
    progress.failed = sorted(ledger.failures.values(), key=lambda f: (f.event_number, f.worker))
    run.failures_seen = set(ledger.failures)
    run.failed_events = {f.event_number for f in progress.failed}
    settled_failures = {e for e in run.failed_events if e in accounted and e not in lost}
    progress.completed = len(accounted) - len(lost) - len(settled_failures)
    moved = set(previous.redelivered) if previous is not None else set()
    progress.redelivered = [EventNumber(e) for e in sorted(moved | set(ledger.redelivered))]
    for worker in live:
        released = sum(end - start for start, end in merged(ledger.released.get(worker, [])))
        run.totals[worker] = released - sum(end - start for start, end in owed.get(worker, []))
    run.reporters, run.final_reports = set(ledger.reporters), set(ledger.final_reports)

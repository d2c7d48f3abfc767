"""What a replay reports: each failed call (:class:`Failure`) and the tally (:class:`ReplaySummary`),
whose last line says events, results, failures and lost events, and whose failures are shown once
per kind (:mod:`dranspose.core.failures`) so a payload failing on every event stays readable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from dranspose.core.failures import FailureDigest

__all__ = ["Failure", "ReplaySummary"]


@dataclass
class Failure:
    """An event (or end-of-scan step) the payload did not complete, and why."""

    event_number: Optional[int]
    component: str
    stage: str
    message: str

    def describe(self) -> str:
        where = f"event {self.event_number}" if self.event_number is not None else "end of scan"
        return f"{where}: {self.component} {self.stage} failed: {self.message}"


@dataclass
class ReplaySummary:
    """What a replay did, for the final report and for tests.

    ``failures`` lists every failed call; ``digest`` groups them by kind (stage, exception and
    line of code) and counts each failed event once, so a payload failing on every event
    reads as one failure, shown once, with the events it happened on.
    """

    events: int = 0
    results: int = 0
    failures: list[Failure] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0
    digest: FailureDigest = field(default_factory=FailureDigest, repr=False)
    lost: dict[str, int] = field(default_factory=dict)
    """Events read but never processed, by cause (e.g. ``event assembly``)."""

    @property
    def ok(self) -> bool:
        return not self.failures

    def add(self, failure: Failure, traceback_text: str = "") -> bool:
        """Record one failed call; True when it is the first of its kind (show it whole)."""
        self.failures.append(failure)
        return self.digest.add(
            failure.event_number,
            failure.component,
            failure.stage,
            failure.message,
            failure.describe(),
            traceback_text,
        )

    def add_lost(self, failure: Failure) -> None:
        """An event that could not be processed at all, and why (the stage names the cause)."""
        self.failures.append(failure)
        self.lost[failure.stage] = self.lost.get(failure.stage, 0) + 1

    def report_lines(self) -> list[str]:
        """One line per kind of failure (the first, in full, with the workers that had it),
        then how many more events failed the same way."""
        lines = []
        for kind in self.digest.kinds:
            on = f" (on {', '.join(kind.components)})" if len(kind.components) > 1 else ""
            lines.append(f"FAILED {kind.first_description}{on}")
            repeat = kind.repeat_line()
            if repeat:
                lines.append(f"  {repeat}")
        return lines

    def describe(self) -> str:
        """The summary line: events, results, failures and lost events by cause."""
        rate = self.events / self.seconds if self.seconds > 0 else float("nan")
        failed = len(self.digest.failed_events)
        outside = self.digest.other
        failures = f"{failed} failures" + (f" (+{outside} outside events)" if outside else "")
        lost = sum(self.lost.values())
        causes = ", ".join(f"{cause}: {n}" for cause, n in sorted(self.lost.items()))
        text = (
            f"replay: {self.events} events, {self.results} results, {failures}, "
            f"{lost} lost{f' ({causes})' if causes else ''} "
            f"in {self.seconds:.2f} s ({rate:.0f} events/s)"
        )
        if self.stopped_early:
            text += "; stopped early on request"
        return text

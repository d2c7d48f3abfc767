"""Failures of payload calls grouped by kind, so a bug that fails every event reads as one bug.

A payload that raises on each of 2,000 events would otherwise print 2,000 tracebacks and bury the
summary. Two failures are of one kind when they happened in the same stage (``process_event``,
``process_result``, ...) with the same exception type at the same line of code (the innermost
frame of the traceback). Each kind keeps its first failure whole and counts the events of the
rest, as ranges; the failed events of a scan are counted once each, however many workers (the
broadcast first event) failed them. Pure code: the caller logs and prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from dranspose.core.ranges import RangeSet

__all__ = ["FailureDigest", "FailureKind", "format_events"]

_FRAME = re.compile(r'^\s*File "([^"]*)", line (\d+)', re.M)


def _where(traceback_text: str) -> Optional[str]:
    """The innermost frame of a traceback as ``file:line``, None without one."""
    frames = _FRAME.findall(traceback_text)
    return f"{frames[-1][0]}:{frames[-1][1]}" if frames else None


def format_events(events: RangeSet, limit: int = 6) -> str:
    """``events 2-9, 12, 15-20`` (at most ``limit`` ranges, then how many more)."""
    parts = []
    for count, (first, last) in enumerate(events.spans()):
        if count == limit:
            parts.append(f"and {events.ranges - limit:,} more ranges")
            break
        parts.append(str(first) if first == last else f"{first}-{last}")
    noun = "event" if len(events) == 1 else "events"
    return f"{noun} {', '.join(parts)}"


@dataclass
class FailureKind:
    """One kind of failure: the first occurrence in full, the later ones counted."""

    stage: str
    exception: str
    where: Optional[str]
    first_description: str
    first_traceback: str
    first_event: Optional[int]
    components: list[str] = field(default_factory=list)
    events: RangeSet = field(default_factory=RangeSet)
    calls: int = 0
    """How many payload calls failed this way (a broadcast event counts once per worker)."""

    @property
    def repeats(self) -> int:
        """Events after the first one that failed the same way."""
        return max(len(self.events) - (1 if self.first_event is not None else 0), 0)

    def repeat_line(self) -> Optional[str]:
        """``... and 1,999 more events failed the same way (events 2-2000)``, or None."""
        if self.repeats == 0:
            return None
        rest = RangeSet()
        for first, last in self.events.spans():
            rest.add_range(first, last + 1)
        if self.first_event is not None:
            rest.discard(self.first_event)
        noun = "event" if self.repeats == 1 else "events"
        return f"... and {self.repeats:,} more {noun} failed the same way ({format_events(rest)})"


class FailureDigest:
    """Failures by kind, in the order each kind first happened."""

    def __init__(self) -> None:
        self._kinds: dict[tuple[str, str, str], FailureKind] = {}
        self.failed_events = RangeSet()
        """Every event some payload call failed on, once each."""
        self.other = 0
        """Failures outside any event (timer, finish, setup)."""

    def add(
        self,
        event_number: Optional[int],
        component: str,
        stage: str,
        message: str,
        description: str,
        traceback_text: str = "",
    ) -> bool:
        """Count one failure; True when it is the first of its kind (show it whole)."""
        exception = message.split(":", 1)[0].strip()
        where = _where(traceback_text)
        key = (stage, exception, where or message)
        kind = self._kinds.get(key)
        first = kind is None
        if kind is None:
            kind = self._kinds[key] = FailureKind(
                stage, exception, where, description, traceback_text, event_number
            )
        kind.calls += 1
        if component not in kind.components:
            kind.components.append(component)
        if event_number is None:
            self.other += 1
        else:
            kind.events.add(event_number)
            self.failed_events.add(event_number)
        return first

    @property
    def kinds(self) -> list[FailureKind]:
        return list(self._kinds.values())

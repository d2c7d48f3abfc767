"""Where a scan's series begins in an upstream: messages before its start are not events.

A scan's event 0 is the upstream's series start (a detector's header). Messages the ingester reads
before it are the rest of an earlier series, or the start was missed (the detector was armed
before the ingester joined): numbering them as events would shift every event of the scan, so
they are discarded and counted (``UpstreamState.discarded``), with one warning when discarding
begins and one saying how many when the series starts or the scan ends. A protocol without a
series start (``Protocol.series_start`` False: ``raw``) has every message an event from the
first.

Pure: no sockets, no clocks; the ingester's forwarding loop asks only until the series started.
"""

from __future__ import annotations

import logging

from dranspose.core.coordination import UpstreamState

logger = logging.getLogger(__name__)


class SeriesGate:
    """Opens at the series start; until then counts and discards what the upstream delivers."""

    __slots__ = ("discarding", "open", "state", "stream")

    def __init__(self, stream: str, state: UpstreamState, series_start: bool = True) -> None:
        self.stream = stream
        self.state = state
        self.open = not series_start
        """Whether messages are events now; the loop reads it before calling :meth:`admit`."""
        self.discarding = 0
        """Messages discarded since discarding last began."""

    def admit(self, starts_series: bool) -> bool:
        """Whether a message read while the gate is closed is an event: the series start opens
        the gate and is one; anything else is discarded and counted."""
        if starts_series:
            self.report_discarded()
            self.open = True
            return True
        self.state.discarded += 1
        if not self.discarding:
            logger.warning(
                "stream %s: message before the series start discarded (the start "
                "was missed, or this is the rest of an earlier series); discarding "
                "until a series starts",
                self.stream,
            )
        self.discarding += 1
        return False

    def report_discarded(self) -> None:
        """Say how many messages were discarded, if more than the one already logged (at the
        series start and when the scan ends before one)."""
        if self.discarding > 1:
            logger.warning(
                "stream %s: %d messages before the series start were discarded",
                self.stream,
                self.discarding,
            )
        self.discarding = 0

"""What an ingester keeps so that a dead worker's events can go to another (``retry_lost``).

When the controller finds a worker dead during a scan with ``retry_lost``, it re-assigns the
worker's unfinished events to others, and every ingester must send those events' frames again.
The frames are long gone from upstream, so the ingester keeps those of each event it forwarded
until the controller confirms the event done (:meth:`Redelivery.forget_below`), within limits:
the oldest go first, and a re-delivery asking for frames no longer kept reports the event lost.

A re-delivery may also name an event the ingester has not read from upstream yet (the worker
died before its frames arrived): then the new destinations are remembered and added to the
event's own when it is forwarded.

Pure bookkeeping, no sockets and no clocks: :class:`dranspose.runtime.ingester_session` sends.
"""

from __future__ import annotations

import collections
from typing import Any, Collection, Optional, Sequence

KEEP_EVENTS = 10_000
KEEP_BYTES = 256 * 1024 * 1024
"""Frames of unconfirmed events are kept up to these limits (the oldest go first); a
re-delivery asking for frames no longer kept reports the event lost."""


class Redelivery:
    """The frames of forwarded, unconfirmed events, and destinations of events not read yet."""

    def __init__(self, keep_events: int = KEEP_EVENTS, keep_bytes: int = KEEP_BYTES) -> None:
        self.keep_events = keep_events
        self.keep_bytes = keep_bytes
        self.kept: collections.OrderedDict[int, tuple[list[Any], int]] = collections.OrderedDict()
        """Frames (and their size in bytes) of forwarded events, oldest first."""
        self.kept_bytes = 0
        self.rerouted: dict[int, list[str]] = {}
        """Re-deliveries of events not forwarded yet: extra destinations for when they are."""
        self.forwarded_up_to = -1
        """The last event forwarded: a re-delivery of a later one is rerouted, not resent."""

    def forwarded(
        self,
        event: int,
        destinations: Sequence[str],
        members: Collection[str],
        frames: list[Any],
        size: int,
    ) -> list[str]:
        """An event read from upstream is about to be sent: keep its frames and return where it
        goes, the assigned ``destinations`` still among the scan's ``members`` (a worker that
        died meanwhile is dropped: its replacement comes through a re-delivery) and the
        re-delivery targets named before it was read.

        One call per event, in the ingester's forwarding loop: keeping is inlined here.
        """
        workers = [w for w in destinations if w in members] + self.rerouted.pop(event, [])
        kept = self.kept
        kept[event] = (frames, size)
        self.kept_bytes += size
        while len(kept) > self.keep_events or (self.kept_bytes > self.keep_bytes and len(kept) > 1):
            _, (_, dropped) = kept.popitem(last=False)
            self.kept_bytes -= dropped
        self.forwarded_up_to = event
        return workers

    def reroute(self, event: int, targets: Sequence[str]) -> bool:
        """If ``event`` has not been forwarded yet, remember ``targets`` for when it is (and
        return True); otherwise the caller resends its kept frames (:meth:`frames`)."""
        if event <= self.forwarded_up_to:
            return False
        self.rerouted.setdefault(event, []).extend(targets)
        return True

    def frames(self, event: int) -> Optional[list[Any]]:
        """The kept frames of a forwarded event, or None once they were dropped for the limits
        (or the event was confirmed done)."""
        kept = self.kept.get(event)
        return None if kept is None else kept[0]

    def forget_below(self, confirmed: int) -> None:
        """Drop the frames of the events the controller confirmed done (all below
        ``confirmed``): no re-delivery will ask for them."""
        kept = self.kept
        while kept and next(iter(kept)) < confirmed:
            _, (_, dropped) = kept.popitem(last=False)
            self.kept_bytes -= dropped

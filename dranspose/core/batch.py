"""The ingester's batch: consecutive events for the same workers, sent as one data-plane message.

A ZMQ send (and the worker's receive) costs about the same for one small event as for sixty, so
events the upstream delivered back to back and that go to the same workers travel together, up
to BATCH_EVENTS events or BATCH_BYTES bytes. Batching never holds a frame back to wait for the
next: the ingester sends the batch as soon as the upstream has nothing more waiting, before it
waits for an assignment, and when an event goes to other workers. When to send is the
ingester's decision (:mod:`dranspose.runtime.ingester_session`); this is what it sends.

Pure: no sockets, no clocks.
"""

from __future__ import annotations

from typing import Any, Sequence

BATCH_EVENTS = 64
BATCH_BYTES = 1024 * 1024
"""Consecutive events for the same workers that the upstream delivered back to back go in one
data-plane message, up to these limits."""


class EventBatch:
    """Events read and routed but not sent yet, all to the workers :attr:`workers`."""

    __slots__ = ("events", "max_bytes", "max_events", "size", "workers")

    def __init__(self, max_events: int = BATCH_EVENTS, max_bytes: int = BATCH_BYTES) -> None:
        self.events: list[tuple[int, list[Any]]] = []
        """``(event number, frames)`` in the order read."""
        self.workers: Sequence[str] = ()
        """Where every event of the batch goes (kept after :meth:`take`: compare before add)."""
        self.size = 0
        """Bytes of the batch's frames."""
        self.max_events = max_events
        self.max_bytes = max_bytes

    def add(self, event: int, workers: Sequence[str], frames: list[Any], size: int) -> bool:
        """Add an event for ``workers`` (the batch's, or any when it is empty: the caller sends
        a batch for other workers first) and return whether the batch is full and goes now."""
        self.events.append((event, frames))
        self.workers = workers
        self.size += size
        return len(self.events) >= self.max_events or self.size >= self.max_bytes

    def take(self) -> list[tuple[int, list[Any]]]:
        """The events to send (to :attr:`workers`), leaving the batch empty."""
        events = self.events
        self.events = []
        self.size = 0
        return events

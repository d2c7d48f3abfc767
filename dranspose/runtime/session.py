"""The scan session every runtime component runs: which scan it is in, and when it leaves it.

Ingesters, workers and the reducer each take part in one scan at a time. What they share lives
here, once: watching the scan record in the store and starting a session for each new scan the
component joins (:meth:`ScanWatcher.join_each`), following that scan's assignment stream until the
scan is over for the component (:func:`follow_assignments`), and sorting data-plane messages by
scan (:meth:`ScanWatcher.sort`), so that messages another component sent for the next scan while this
one still finishes the previous are kept for it and those of a scan already left are dropped.

Names: a *session* is one component's part in one scan (the ingester's
:class:`~dranspose.runtime.ingester_session.IngesterSession`, the worker's and the reducer's); the
:class:`ScanWatcher` runs them one after the other. A *run* is only ever an
:class:`~dranspose.core.coordination.AssignedRun` (consecutive events with the same destinations).

Scan ids the watcher records are :data:`~dranspose.core.protocol.ScanId`; the functions that
take one from callers accept any ``str`` while ``ScanInfo.scan_id`` is still typed ``str``.

A component supplies only what differs: which scans it joins, what one session does, what it does
with a batch of assignments and with a fresh scan record. The states of one component::

    waiting --(a scan it joins appears in the store)--> [joining] --> in session
            --(the scan is over for it: the session returns)--> waiting

A worker joins through the store, in one step with checking that the scan still runs
(:meth:`Store.join_scan`): once the controller marked a scan stopped or replaced it, the set of
workers that joined it is final, and the reducer stops waiting for the others at once.

A component never rejoins a scan it left. The scan is over for everyone when the controller
marks it stopped (or aborted), marks it complete, or replaces it (:func:`scan_over`);
:mod:`dranspose.core.lifecycle` has the whole life cycle. (An ingester's early message is of
another kind: the one upstream message it read when its scan ended, which it carries over to the
next session itself, since it belongs to no scan until a series starts.)
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import Awaitable, Callable, Generic, Optional, TypeVar

from dranspose.core.coordination import AssignedRun, ScanInfo
from dranspose.core.protocol import ScanId
from dranspose.io.store import UNAVAILABLE as REDIS_UNAVAILABLE
from dranspose.io.store import Store
from dranspose.runtime.component import SCAN_POLL_SECONDS, Component

logger = logging.getLogger(__name__)

M = TypeVar("M")


class Sorted(enum.Enum):
    """Where a data-plane message belongs (see :meth:`ScanWatcher.sort`)."""

    CURRENT = "current"
    """The scan of the session in progress: handle it now."""
    LATER = "later"
    """A scan this component has not joined yet: kept for that scan's session."""
    LEFT = "left"
    """A scan this component already left: dropped."""


def scan_over(scan_id: ScanId, current: Optional[ScanInfo]) -> bool:
    """Whether the store's scan record ``current`` ends the scan ``scan_id`` for a component.

    No record, another scan's record (the scan was replaced), or the controller marked the scan
    stopped (an operator's stop or a fault) or complete (every event accounted for, which ends
    sessions that stayed open for re-deliveries).
    """
    return why_over(scan_id, current) is not None


class ScanWatcher(Generic[M]):
    """Watches the scan record for the scans a component joins, runs one session per scan joined,
    one after the other, and keeps the messages that came early for their scan.

    ``M`` is the type of the data-plane messages the component sorts by scan (a worker's partial
    events, the reducer's raw results); an ingester sorts none.
    """

    def __init__(
        self, component: Component, joins: Callable[[ScanInfo], bool], record_join: bool = False
    ) -> None:
        self.component = component
        self.joins = joins
        """Whether the component takes part in a scan it sees in the store for the first time."""
        self.record_join = record_join
        """Join through the store (:meth:`Store.join_scan`) before a session begins: a worker
        does, so that the reducer knows which workers of a stopped scan will still say done."""
        self.current: Optional[ScanId] = None
        """The scan of the session in progress, None while waiting."""
        self.joined: set[ScanId] = set()
        """Scans joined (and maybe left): a scan is joined at most once."""
        self.left: set[ScanId] = set()
        self._later: dict[str, list[M]] = {}

    async def join_each(self, session: Callable[[ScanInfo], Awaitable[None]]) -> None:
        """Watch the scan record and run ``session`` for every new scan joined, until stopping.

        Between reads it waits for the controller's next write of the record (a scan starts
        within milliseconds, not a polling interval, which the first events of a scan would
        wait for), and reads it again at least every SCAN_WAIT_SECONDS.

        ``joins`` is asked again at every poll, but what it looks at (stopped, the scan's
        members and instances) only ever changes from "join" to "do not join".
        """
        comp = self.component
        mark = "0"
        while not comp.stopping:
            scan = await comp.read_scan()
            if scan is None or scan.scan_id in self.joined or not self.joins(scan):
                mark = await comp.wait_scan_change(mark)
                continue
            scan_id = ScanId(scan.scan_id)
            self.joined.add(scan_id)
            if self.record_join and not await self._record_join(scan_id):
                self.left.add(scan_id)  # stopped or replaced between reading and joining
                continue
            self.current = scan_id
            try:
                await session(scan)
            finally:
                self.left.add(scan_id)
                self.current = None

    async def _record_join(self, scan_id: ScanId) -> bool:
        comp = self.component
        while not comp.stopping:
            try:
                return await comp.store.join_scan(scan_id, comp.info.name)
            except REDIS_UNAVAILABLE as exc:  # the scan has not begun here: keep trying
                logger.warning("%s: cannot join scan %s yet: %s", comp.info.name, scan_id, exc)
                await comp.sleep_or_stop(SCAN_POLL_SECONDS)
        return False

    def early(self) -> list[M]:
        """The messages of the current scan that arrived before its session began.

        Messages of other scans still waiting belong to scans replaced before this component
        joined them, which it never will: they are dropped.
        """
        early = self._later.pop(self.current, []) if self.current is not None else []
        self._later.clear()
        return early

    def sort(self, scan_id: ScanId, message: M) -> Sorted:
        """Tell where ``message`` of scan ``scan_id`` belongs; a later scan's is kept for it."""
        if scan_id == self.current:
            return Sorted.CURRENT
        if scan_id in self.left:
            return Sorted.LEFT
        self._later.setdefault(scan_id, []).append(message)
        return Sorted.LATER


def why_over(scan_id: ScanId, current: Optional[ScanInfo]) -> Optional[str]:
    """Why the scan record ``current`` ends the scan ``scan_id`` (:func:`scan_over`), in words
    for the component's log; None while it goes on."""
    if current is None:
        return "its record is gone from Redis (restarted without persistence?): the scan is aborted"
    if current.scan_id != scan_id:
        return f"it was replaced by scan {current.scan_id}"
    if current.aborted:
        return f"the controller aborted it: {current.aborted}"
    if current.stopped:
        return "it was stopped"
    return "it is complete" if current.complete else None


async def follow_assignments(
    store: Store,
    scan_id: ScanId,
    who: str,
    assigned: Callable[[list[AssignedRun], set[str]], Awaitable[None]],
    still_in: Optional[Callable[[ScanInfo], Awaitable[bool]]] = None,
    controller_missing: Optional[Callable[[], Awaitable[Optional[str]]]] = None,
) -> Optional[str]:
    """Hand each batch of the scan's assignments to ``assigned`` (with the workers whose
    requests they answer) until the scan is over; returns why its part was cut short (an abort,
    the record gone, no controller) or None (the scan ended, or ``still_in`` left it).

    The scan record changes rarely, so it is read between batches at most every
    ``SCAN_POLL_SECONDS`` rather than after each one; ``still_in`` sees every record read while
    the scan goes on (a component updates what it knows from it) and returns False to leave the
    scan early. While Redis is unreachable (e.g. this host's link is down) the record is read
    again after a pause: an outage never ends a session by itself, the controller does. While
    no controller is there the scan goes on too (a successor may take it over), until
    ``controller_missing`` gives a reason (:meth:`Component.controller_missing`): then the
    component aborts its part, so that nothing waits for ever for assignments nobody makes.
    """
    last_id = "0"
    checked = time.monotonic()
    while True:
        last_id, runs, answered = await store.read_assignments(scan_id, last_id)
        if runs:
            await assigned(runs, answered)
            if time.monotonic() - checked < SCAN_POLL_SECONDS:
                continue
        checked = time.monotonic()
        try:
            current = await store.get_scan()
        except REDIS_UNAVAILABLE as exc:
            logger.warning("%s: cannot read the scan, retrying: %s", who, exc)
            await asyncio.sleep(SCAN_POLL_SECONDS)
            continue
        over = why_over(scan_id, current)
        if over is not None:
            if current is None:  # nobody else tells this component's side of the abort
                logger.error("%s: leaving scan %s: %s", who, scan_id, over)
                return over
            # the controller has logged its abort already
            log = logger.warning if current.aborted else logger.info
            log("%s: leaving scan %s: %s", who, scan_id, over)
            return over if current.aborted else None
        assert current is not None
        if still_in is not None and not await still_in(current):
            return None
        missing = await controller_missing() if controller_missing is not None else None
        if missing is not None:
            logger.error("%s: aborting its part of scan %s: %s", who, scan_id, missing)
            return missing

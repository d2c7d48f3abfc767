"""How dranspose calls a payload: one policy, used by replay and by the live worker and reducer.

A payload that behaves in replay must behave the same at the beamline, so everything about
*calling* the user's methods lives here once: which arguments each method is offered (the
signature leniency itself is :class:`dranspose.core.payload.LenientCall`), when ``tick=True`` is
passed, how ``get_tick_interval`` and ``timer()`` return values are read and what happens when
they raise, how a result is pickled on its way to the reducer, how ``finish`` is called, and which
replay worker instances see an event (the first one goes to all of them).

Every call returns what happened instead of raising: the reason and the payload's traceback, which
the caller logs and records where it accounts for events (the replay summary, the worker's
failed-event report, the reducer's failure list). Failures that concern no event (a broken
``get_tick_interval`` or ``timer`` return value) are logged here, once. This module holds no
sockets, files or threads; the caller passes the clock reading in, so the policy is tested alone.
"""

from __future__ import annotations

import itertools
import logging
import math
import pickle
import traceback
from dataclasses import dataclass
from typing import Any, Optional

from dranspose.core.payload import ReducerPayload, WorkerPayload

logger = logging.getLogger(__name__)

DEFAULT_TICK_INTERVAL = 1.0
"""Seconds between ``tick=True`` events for workers without (or with a broken) ``get_tick_interval``."""

DEFAULT_TIMER_INTERVAL = 1.0
"""Seconds until the next reducer ``timer()`` call when it returns ``None`` (or cannot be read)."""


@dataclass(slots=True)
class Outcome:
    """What one payload call gave: its return value, or why it failed (then ``value`` is None).

    Built for every event and result: a frozen dataclass cost 1 µs per construction (five
    times this slotted one), a fifth of a result's whole cost in the reducer."""

    value: Any = None
    failure: Optional[str] = None
    traceback: str = ""
    """The payload's traceback when it raised, for the caller's log."""

    @property
    def ok(self) -> bool:
        return self.failure is None


def _failed(exc: BaseException) -> Outcome:
    return Outcome(failure=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())


def _call(method: Optional[Any], *args: Any) -> Outcome:
    """Call an optional payload method (``None``: the payload does not define it)."""
    if method is None:
        return Outcome()
    try:
        return Outcome(method(*args))
    except Exception as exc:
        return _failed(exc)


def _seconds(value: Any) -> Optional[float]:
    """A non-negative finite number of seconds from a payload's return value, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
    seconds = float(value)
    if math.isnan(seconds):
        return None
    return max(seconds, 0.0)


def pickle_result(value: Any) -> Outcome:
    """The pickled result as it travels to the reducer; an unpicklable one fails here, in replay
    as at the beamline, instead of first in production."""
    try:
        return Outcome(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as exc:
        return Outcome(failure=f"result cannot be pickled: {type(exc).__name__}: {exc}")


class WorkerCalls:
    """Calls one worker instance's methods: ``process_event`` with ``tick``, and ``finish``.

    The first event of a scan is passed ``tick=True`` (as in the original dranspose), then at most
    one event per tick interval. ``notes`` collects failures that belong to no event (a broken
    ``get_tick_interval``), for the caller's summary; each is logged once, not per event.
    """

    def __init__(self, payload: WorkerPayload, name: str) -> None:
        self.payload = payload
        self.name = name
        self.last_tick = -math.inf
        self.notes: list[tuple[str, str]] = []

    def tick_interval(self, parameters: Any) -> float:
        """The payload's tick interval; a raising or non-numeric ``get_tick_interval`` is
        reported once and the default used from then on."""
        method = self.payload.get_tick_interval
        if method is None:
            return DEFAULT_TICK_INTERVAL
        try:
            value = method(parameters)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}; ticking every {DEFAULT_TICK_INTERVAL} s"
            logger.error(
                "worker %s: get_tick_interval failed: %s\n%s",
                self.name,
                reason,
                traceback.format_exc(),
            )
        else:
            seconds = _seconds(value)
            if seconds is not None:
                return seconds
            reason = (
                f"returned {value!r}, expected a number of seconds; ticking every "
                f"{DEFAULT_TICK_INTERVAL} s"
            )
            logger.error("worker %s: get_tick_interval %s", self.name, reason)
        self.notes.append(("get_tick_interval", reason))
        self.payload.get_tick_interval = None
        return DEFAULT_TICK_INTERVAL

    def tick(self, parameters: Any, now: float) -> bool:
        """Whether this event is passed ``tick=True``: at most once per tick interval."""
        if now - self.last_tick >= self.tick_interval(parameters):
            self.last_tick = now
            return True
        return False

    def process_event(self, event: Any, parameters: Any, now: float) -> Outcome:
        """Run ``process_event``; the outcome's value is the result (None: nothing to reduce)."""
        method = self.payload.process_event
        assert method is not None  # WorkerPayload refuses a class without one
        tick = self.tick(parameters, now)
        try:
            return Outcome(method(event, parameters, tick))
        except Exception as exc:
            return _failed(exc)

    def finish(self, parameters: Any) -> Outcome:
        return _call(self.payload.finish, parameters)


_CALLS_SERIALS = itertools.count(1)


class ReducerCalls:
    """Calls the reducer instance's methods: ``process_result``, ``timer`` and ``finish``.

    ``timer()`` is called first when the scan starts and then after the number of seconds it
    returned (``None``: the default interval); a payload may declare ``timer(self)`` or
    ``timer(self, parameters)``.
    """

    def __init__(self, payload: ReducerPayload, now: float) -> None:
        self.payload = payload
        self.next_timer = now
        self.notes: list[tuple[str, str]] = []
        self.serial = next(_CALLS_SERIALS)
        """Distinguishes this scan's calls from an earlier scan's (whose count may be equal)."""
        self.changes = 0
        """Calls that may have changed ``publish``, counted after each returns: the viewer
        polls this (with ``serial``) and re-reads the tree only when it moved."""

    def process_result(self, result: Any, parameters: Any) -> Outcome:
        method = self.payload.process_result
        assert method is not None  # ReducerPayload refuses a class without one
        try:
            return Outcome(method(result, parameters))
        except Exception as exc:
            return _failed(exc)
        finally:
            self.changes += 1

    def timer_due(self, now: float) -> bool:
        return self.payload.timer is not None and now >= self.next_timer

    def call_timer(self, parameters: Any, now: float) -> Outcome:
        """Call ``timer()`` and schedule the next call; ``now`` is the clock after the call."""
        assert self.payload.timer is not None
        delay = DEFAULT_TIMER_INTERVAL
        try:
            value = self.payload.timer(parameters)
        except Exception as exc:
            outcome = _failed(exc)
        else:
            outcome = Outcome(value)
            if value is not None:
                seconds = _seconds(value)
                if seconds is None:
                    reason = (
                        f"returned {value!r}, expected a number of seconds or None; next "
                        f"call in {DEFAULT_TIMER_INTERVAL} s"
                    )
                    logger.error("reducer: timer %s", reason)
                    self.notes.append(("timer", reason))
                else:
                    delay = seconds
        self.next_timer = now + delay
        self.changes += 1
        return outcome

    def finish(self, parameters: Any) -> Outcome:
        try:
            return _call(self.payload.finish, parameters)
        finally:
            self.changes += 1


class ReplayDispatch:
    """Which replay worker instances process an event.

    The first event goes to every instance when ``broadcast_first`` is set: at the beamline it is
    typically the detectors' series header, which trigger maps send to all workers so each can
    set itself up. Every later event goes to one instance, in turn.
    """

    def __init__(self, nworkers: int, broadcast_first: bool = True) -> None:
        if nworkers < 1:
            raise ValueError(f"nworkers must be at least 1, got {nworkers}")
        self.nworkers = nworkers
        self.broadcast_first = broadcast_first
        self._seen_first = False
        self._next = 0

    def targets(self) -> range:
        if not self._seen_first:
            self._seen_first = True
            if self.broadcast_first:
                return range(self.nworkers)
        index = self._next
        self._next = (index + 1) % self.nworkers
        return range(index, index + 1)

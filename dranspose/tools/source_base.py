"""What every synthetic source shares: one sender, a background thread, pacing and statistics.

:mod:`dranspose.tools.source` builds its sources on :class:`SourceBase`, which only needs them to
produce items (the frames of one message, or a pause). The sender (:mod:`dranspose.tools.playback`)
is a ZMQ PUSH or PUB socket by default; a subclass may choose another transport.

A PUSH socket only sends when a receiver is connected and below its high-water mark, so a PULL
ingester never loses a message: the source simply waits. A PUB socket never waits and drops
whatever no subscriber takes, including everything sent before a subscriber has connected,
unless it is told to wait for ``subscribers`` first.

Each source runs in a background thread, as a context manager or with
``start()``/``wait_done()``/``stop()``, or blocking with ``run()``. Every wait inside is bounded
(at most 100 ms between looks at the stop flag), so ``stop()`` returns promptly even while the
source waits for a receiver; stopping closes the socket with linger 0, dropping unsent messages.
A source that was not stopped is *done* once ZMQ has written its last message to the network.
"""

from __future__ import annotations

import enum
import logging
import math
import operator
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Iterator, Literal, Optional, SupportsIndex, TypeVar, Union

import zmq

from dranspose.tools.playback import Sender, SenderError, ZmqSender

# one logger for every source, the name users filter by and the getting-started page shows
logger = logging.getLogger("dranspose.tools.source")

SOCKET_TYPES = {"PUSH": zmq.PUSH, "PUB": zmq.PUB}

_WAIT_SECONDS = 0.1
"""Longest a source waits at once before looking at its stop flag again."""


class SourceError(RuntimeError):
    """A source cannot serve, e.g. because its address cannot be bound."""


@dataclass(frozen=True)
class SendStats:
    """What a source has sent so far.

    ``seconds`` runs from the moment the first message was handed to ZMQ until the last one was
    written out (or the source stopped), so time spent waiting for a receiver to connect before
    the first message does not count.
    """

    messages: int = 0
    bytes: int = 0
    seconds: float = 0.0
    stopped: bool = False

    def describe(self) -> str:
        """One line: messages, megabytes (10^6 bytes) and seconds, with the rates."""
        megabytes = self.bytes / 1e6
        line = f"sent {self.messages} messages, {megabytes:.2f} MB in {self.seconds:.2f} s"
        if self.seconds > 0 and self.messages > 1:
            line += (
                f" ({self.messages / self.seconds:.0f} msg/s, {megabytes / self.seconds:.1f} MB/s)"
            )
        if self.stopped:
            line += ", stopped early"
        return line


class _StoppedError(Exception):
    """Raised inside the sender when the stop flag is seen."""


@dataclass(frozen=True)
class Pause:
    seconds: float


Item = Union[tuple[list[bytes], bool], Pause]
"""What a source produces: ``(frames, paced)`` for one message, or a pause."""


class _End(enum.Enum):
    """The marker after the last item (an enum, so type checkers narrow ``is not END``)."""

    END = "end"


END = _End.END
Upcoming = Union[Item, Literal[_End.END]]

_S = TypeVar("_S", bound="SourceBase")


class SourceBase:
    """Sender, thread, pacing and statistics shared by the sources; subclasses produce items."""

    _transports: tuple[str, ...] = tuple(SOCKET_TYPES)

    def __init__(
        self,
        bind: str,
        sock_type: str = "PUSH",
        rate: Optional[float] = None,
        hwm: Optional[int] = None,
        *,
        subscribers: int = 0,
    ) -> None:
        if not isinstance(bind, str) or not bind:
            raise ValueError(f"bind must be an address such as 'tcp://*:9999', got {bind!r}")
        kind = sock_type.upper() if isinstance(sock_type, str) else sock_type
        if kind not in self._transports:
            names = " or ".join(repr(t) for t in self._transports)
            raise ValueError(f"sock_type must be {names}, got {sock_type!r}")
        if as_int(subscribers) is None or subscribers < 0:
            raise ValueError(f"subscribers must be a non-negative integer, got {subscribers!r}")
        if subscribers and kind != "PUB":
            raise ValueError(f"subscribers only apply to a PUB source, not {kind}")
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, (int, float)):
                raise ValueError(f"rate must be a number of messages per second, got {rate!r}")
            if not math.isfinite(rate) or rate <= 0:
                raise ValueError(f"rate must be positive and finite, got {rate!r}")
        if hwm is not None and (as_int(hwm) is None or hwm < 0):
            raise ValueError(f"hwm must be a non-negative integer, got {hwm!r}")
        self.bind = bind
        self.sock_type: str = kind
        self.rate: Optional[float] = float(rate) if rate is not None else None
        self.hwm = hwm
        self.subscribers = int(subscribers)
        """A PUB source waits until this many subscribers have subscribed before sending."""
        self.endpoint: Optional[str] = None
        """The address actually bound (wildcards and ``:*`` ports resolved), once started."""

        self._sender: Optional[Sender] = None
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._error: Optional[BaseException] = None
        self._stopped = False
        self._sent = 0
        self._bytes = 0
        self._first_at: Optional[float] = None
        self._end_at: Optional[float] = None
        self._pace_start: Optional[float] = None
        self._paced = 0

    # -- what subclasses provide ------------------------------------------------------------

    def describe(self) -> str:
        """One line saying what this source serves."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """Check inputs before binding; errors raised here come out of ``start()``."""

    def _release(self) -> None:
        """Free what ``_prepare`` acquired when the source ends or fails to start."""

    def _items(self) -> Iterator[Item]:
        raise NotImplementedError

    # -- public control ---------------------------------------------------------------------

    def start(self: _S) -> _S:
        """Bind and start sending in a background thread; returns ``self``.

        Raises :class:`SourceError` when the address cannot be bound, and the input's errors
        (bad capture file, unknown stream) before anything is bound.
        """
        if self._thread is not None:
            raise RuntimeError("this source was already started; make a new one")
        self._prepare()
        try:
            self._open()
        except BaseException:
            self._release()
            raise
        self._thread = threading.Thread(
            target=self._serve, name=f"dranspose-source {self.endpoint}", daemon=True
        )
        self._thread.start()
        return self

    def wait_done(self, timeout: Optional[float] = None) -> bool:
        """Wait until everything was sent (or the source stopped); False on timeout.

        Re-raises the error that ended the sending thread, e.g. a :class:`CaptureError` for a
        capture damaged part way through (everything before the damage has been sent).
        """
        if self._thread is None:
            raise RuntimeError("the source is not started")
        if not self._done.wait(timeout):
            return False
        if self._error is not None:
            raise self._error
        return True

    def stop(self, timeout: float = 1.0) -> SendStats:
        """Stop sending, drop what is still queued, and return the statistics.

        Returns within about 100 ms (at most ``timeout`` seconds) whatever the sender waits for.
        Stopping a source that already finished changes nothing.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.stats

    def run(self) -> SendStats:
        """Send everything, blocking; returns the statistics.

        On ``KeyboardInterrupt`` the source is stopped and the interrupt re-raised; ``stats``
        still tells what was sent.
        """
        try:
            # Ctrl-C may come at any point after start(), even while the line below logs: the
            # sending thread must be stopped whenever it does, or it keeps the process alive
            self.start()
            logger.info("%s on %s", self.describe(), self.endpoint)
            while not self.wait_done(_WAIT_SECONDS):
                pass
        except KeyboardInterrupt:
            self.stop()
            raise
        return self.stats

    @property
    def stats(self) -> SendStats:
        """What was sent so far (a snapshot)."""
        seconds = 0.0
        if self._first_at is not None:
            end = self._end_at if self._end_at is not None else time.monotonic()
            seconds = end - self._first_at
        return SendStats(self._sent, self._bytes, seconds, self._stopped)

    @property
    def running(self) -> bool:
        """True between ``start()`` and the end of sending."""
        return self._thread is not None and not self._done.is_set()

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()
        if exc_type is None and self._error is not None:
            raise self._error

    # -- sender and sending thread ----------------------------------------------------------

    def _make_sender(self) -> Sender:
        return ZmqSender(self.bind, self.sock_type, self.hwm, self.subscribers)

    def _open(self) -> None:
        sender = self._make_sender()
        try:
            sender.open()
        except SenderError as exc:
            raise SourceError(str(exc)) from exc
        self._sender, self.endpoint = sender, sender.endpoint

    def _serve(self) -> None:
        flushed = False
        try:
            self._transmit()
            flushed = True
        except _StoppedError:
            self._stopped = True
        except BaseException as exc:  # handed to wait_done()/__exit__ in the caller's thread
            self._error = exc
        finally:
            if self._first_at is not None and self._end_at is None:
                self._end_at = time.monotonic()
            self._release()
            assert self._sender is not None
            self._sender.close(flushed)
            self._done.set()

    def _transmit(self) -> None:
        """Send every item; the end waits until the last message is out.

        Items are read one ahead to know which message is the last. An error while producing
        the next item is raised only after the current message was sent and written out.
        """
        items = self._items()
        current, failure = _advance(items)
        sent = False
        while current is not END:
            following, failure = _advance(items)
            if isinstance(current, Pause):
                self._pause(current.seconds)
            else:
                frames, paced = current
                self._send(frames, paced, last=following is END)
                sent = True
            current = following
        if sent:
            assert self._sender is not None
            self._sender.flush(self._check_stop)
        self._end_at = time.monotonic()
        if failure is not None:
            raise failure

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise _StoppedError

    def _sleep_until(self, deadline: float) -> None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._stop.wait(min(remaining, _WAIT_SECONDS)):
                raise _StoppedError

    def _pause(self, seconds: float) -> None:
        self._check_stop()
        self._sleep_until(time.monotonic() + seconds)
        self._pace_start = None  # pacing restarts after a pause instead of catching up

    def _send(self, frames: list[bytes], paced: bool, last: bool) -> None:
        sender = self._sender
        assert sender is not None
        self._check_stop()
        if paced and self.rate is not None:
            self._wait_for_slot(self.rate)
        try:
            handed = sender.send(frames, last, self._check_stop)
        except SenderError as exc:
            raise SourceError(f"{exc} (after {self._sent} messages)") from exc
        if self._first_at is None:
            self._first_at = handed
        self._sent += 1
        self._bytes += sum(len(f) for f in frames)

    def _wait_for_slot(self, rate: float) -> None:
        """Keep paced messages on a schedule of ``rate`` per second from the first one.

        A source held up by its receiver starts a new schedule instead of sending a burst to
        catch up, so it never goes faster than ``rate``.
        """
        interval = 1.0 / rate
        now = time.monotonic()
        if self._pace_start is None:
            self._pace_start, self._paced = now, 0
        due = self._pace_start + self._paced * interval
        if due < now - interval:
            self._pace_start, self._paced = now, 0
        else:
            self._sleep_until(due)
        self._paced += 1


def _advance(items: Iterator[Item]) -> tuple[Upcoming, Optional[BaseException]]:
    try:
        return next(items), None
    except StopIteration:
        return END, None
    except Exception as exc:
        return END, exc


def as_int(value: object) -> Optional[int]:
    """``value`` as an int when it is an integer (a numpy one too), else None; bools are not."""
    if isinstance(value, bool) or not isinstance(value, SupportsIndex):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None

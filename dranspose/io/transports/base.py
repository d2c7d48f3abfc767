"""The ingester's side of an upstream, whatever the transport: a backlog of classified messages.

An :class:`Upstream` hands the ingester one protocol message at a time with its
:class:`~dranspose.protocols.registry.Kind` (:meth:`Upstream.pop`) and lets it wait for the next
(:meth:`Upstream.wait`). Transports differ in how messages reach the backlog and in what happens
when nobody takes them:

* ZMQ PULL reads only when the backlog is empty, so a slow pipeline holds the detector back
  (backpressure) and nothing is lost;
* ZMQ SUB reads all the time (a publisher never waits) and, with the backlog full, throws new
  messages away and counts them (``overflow``);
* TCP reads all the time but stops reading while the backlog is full, so TCP flow control
  holds the sender back;
* HTTP accepts a post only when the backlog has room, waiting for it a bounded time.

The backlog is bounded twice: by ``backlog`` messages and by ``backlog_bytes`` (whichever is
reached first), so a stream of large frames cannot fill a thousand-message backlog with
gigabytes. ZMQ upstreams also size their socket's receive high-water mark from the frames they
see (:mod:`dranspose.io.transports.zmq_upstream`).

Everything an upstream sees is counted in its :class:`~dranspose.core.coordination.UpstreamState`,
which the ingester reports with its heartbeat. A SUB upstream also watches the protocol's
message counter (:class:`~dranspose.protocols.registry.CounterWatch`) and counts messages that never
arrived (``missing``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any, ClassVar, Iterable, Optional

from dranspose.core.coordination import UpstreamState
from dranspose.core.event import frames_nbytes
from dranspose.protocols.registry import CounterWatch, Framer, Kind, Protocol

logger = logging.getLogger(__name__)

Message = tuple[Kind, list[Any]]
"""One protocol message: what it is, and its frames."""
Queued = tuple[Kind, list[Any], int]
"""A message in the backlog with its size in bytes, counted once when it arrives: the backlog's
byte account and the ingester's statistics both need it, per message (:meth:`Upstream.take`)."""

DEFAULT_BACKLOG = 1000
"""Messages an upstream holds for the ingester at most (ZMQ's default high-water mark)."""
DEFAULT_BACKLOG_BYTES = 64 * 1024 * 1024
"""Bytes an upstream holds for the ingester at most: 32 frames of 2 MB. One message is always
accepted into an empty backlog, however large."""


_GAP_LOG_SECONDS = 1.0
"""Gaps are logged at most this often; the ones in between are summed into the next line."""


class Upstream:
    """Base of the transports: backlog, counting and logging; subclasses fill the backlog."""

    transport: ClassVar[str] = ""
    watches_counter: ClassVar[bool] = False
    """Whether messages can be lost on the way (only a SUB upstream): then gaps are counted."""

    def __init__(
        self,
        protocol: Protocol,
        url: str,
        *,
        name: str,
        backlog: int = DEFAULT_BACKLOG,
        regroup: bool = True,
        backlog_bytes: int = DEFAULT_BACKLOG_BYTES,
    ) -> None:
        if backlog < 1:
            raise ValueError(f"backlog must be at least 1 message, got {backlog}")
        if backlog_bytes < 1:
            raise ValueError(f"backlog_bytes must be at least 1, got {backlog_bytes}")
        self.protocol = protocol
        self.url = url
        self.name = name
        self.state = UpstreamState(url=url, transport=self.transport, protocol=protocol.name)
        self.backlog: collections.deque[Queued] = collections.deque()
        self.backlog_limit = backlog
        self.backlog_bytes_limit = backlog_bytes
        self.backlog_bytes = 0
        """Bytes of the messages in the backlog."""
        self.framer = protocol.make_framer() if regroup else Framer()
        self.watch = (
            CounterWatch(protocol.counter)
            if self.watches_counter and protocol.counter is not None
            else None
        )
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._overflowing = 0
        self._gap_logged_at = 0.0
        self._unlogged = (0, 0)  # missing messages and gaps not logged yet

    # -- what the ingester calls ----------------------------------------------------------------

    async def start(self) -> None:
        """Begin reading (connect, listen); returns once the transport is set up."""

    async def close(self) -> None:
        """Stop reading and release the transport."""

    def pop(self) -> Optional[Message]:
        """The oldest message not taken yet, or ``None`` if there is none right now."""
        item = self.take()
        return None if item is None else (item[0], item[1])

    def take(self) -> Optional[Queued]:
        """:meth:`pop` with the message's size in bytes (what the ingester forwards by)."""
        backlog = self.backlog
        if backlog:
            item = backlog.popleft()
            self.backlog_bytes -= item[2]
            if not self.full:
                self._room.set()
            return item
        self._arrived.clear()
        return None

    async def wait(self, timeout: float) -> None:
        """Return when a message may be ready, or after ``timeout`` seconds."""
        if self.backlog:
            return
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    @property
    def full(self) -> bool:
        """No room for another message: the message or the byte limit is reached."""
        return (
            len(self.backlog) >= self.backlog_limit
            or self.backlog_bytes >= self.backlog_bytes_limit
        )

    # -- what the transports call ---------------------------------------------------------------

    def _receive(self, transport_message: list[Any]) -> None:
        """Frame, classify, count and queue the messages one transport message completes."""
        self._receive_all((transport_message,))

    def _receive_all(self, transport_messages: Iterable[list[Any]]) -> int:
        """:meth:`_receive` for each of a batch; the state model (a pydantic object, whose every
        assignment is a Python call) is updated once per batch. Returns the size of the largest
        message (0 if none)."""
        classify, feed, watch = self.protocol.classify, self.framer.feed, self.watch
        received = largest = 0
        try:
            for transport_message in transport_messages:
                for frames in feed(transport_message):
                    kind = classify(frames)
                    received += 1
                    if watch is not None:
                        missing = watch.see(kind, frames)
                        if missing:
                            self._count_missing(missing)
                        if kind is Kind.END:
                            self._log_gaps("since the last report, up to the series end")
                    size = frames_nbytes(frames)
                    if size > largest:
                        largest = size
                    self._queue((kind, frames, size))
        finally:
            self.state.received += received
        return largest

    def _queue(self, item: Queued) -> None:
        self.backlog.append(item)
        self.backlog_bytes += item[2]
        self._arrived.set()
        if self.full:
            self._room.clear()

    def _overflow(self, item: Queued) -> None:
        """Throw away a message because the backlog is full, counting it (SUB only)."""
        state = self.state
        state.overflow += 1
        state.dropped += 1
        if not self._overflowing:
            logger.warning(
                "stream %s: backlog full (%d messages or %d bytes: no scan is reading this stream, or the "
                "workers are slower than the upstream); dropping new messages from %s",
                self.name,
                self.backlog_limit,
                self.backlog_bytes_limit,
                self.url,
            )
        self._overflowing += 1

    def _overflow_ended(self) -> None:
        if self._overflowing:
            logger.warning(
                "stream %s: backlog has room again; %d messages were dropped",
                self.name,
                self._overflowing,
            )
            self._overflowing = 0

    def _count_missing(self, missing: int) -> None:
        state = self.state
        state.missing += missing
        state.dropped += missing
        state.gaps += 1
        earlier_missing, earlier_gaps = self._unlogged
        self._unlogged = (earlier_missing + missing, earlier_gaps + 1)
        if time.monotonic() - self._gap_logged_at >= _GAP_LOG_SECONDS:
            expected = self.watch.expected if self.watch is not None else None
            self._log_gaps(f"before message number {expected - 1}" if expected is not None else "")

    def _log_gaps(self, where: str) -> None:
        """Log the gaps not logged yet (one line, however many there were)."""
        missing, gaps = self._unlogged
        if not gaps:
            return
        self._gap_logged_at = time.monotonic()
        self._unlogged = (0, 0)
        what = f"{missing} message{'s' if missing != 1 else ''}"
        if gaps > 1:
            what += f" in {gaps} gaps"
        logger.warning(
            "stream %s: %s missing %s (by the protocol's message counter); lost before reaching "
            "the ingester (publisher high-water mark, network or reconnect); %d missing in all",
            self.name,
            what,
            where,
            self.state.missing,
        )

    def _connected(self, how: str) -> None:
        self.state.connected = True
        self.state.connects += 1
        self.state.last_error = None
        logger.info("stream %s: %s", self.name, how)

    def _disconnected(self, why: str) -> None:
        self.state.connected = False
        self.state.disconnects += 1
        self.state.last_error = why
        logger.warning("stream %s: %s", self.name, why)

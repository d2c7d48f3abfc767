"""ZMQ upstreams: PULL (read on demand, never loses) and SUB (read always, counts what it loses).

Both connect to the detector's bound socket; ZMQ reconnects by itself when the detector goes
away and comes back (here with back-off from 0.1 s up to 2 s), and a SUB socket subscribes again
on its own. A socket monitor reports every connection and disconnection to the log and to the
upstream's state, so an outage is visible while ZMQ retries quietly.

ZMQ reads ahead into a socket's queue up to its receive high-water mark, which counts messages,
not bytes: a thousand 2 MB frames would be 2 GB in the ingester. A PULL socket therefore starts
with a small mark (:data:`PULL_RCVHWM`: a PUSH detector simply waits), a SUB socket with a large
one (:data:`SUB_RCVHWM`: a publisher does not wait, it drops), and both lower their mark once they
see messages so large that the queue would hold more than the upstream's byte budget
(``backlog_bytes``). The mark is only ever lowered: libzmq applies a new mark to a connected
peer, but a raised one can stall a peer that is already waiting for room.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Optional

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from dranspose.io.dataplane import Readable, drain
from dranspose.io.transports.base import (
    DEFAULT_BACKLOG,
    DEFAULT_BACKLOG_BYTES,
    Queued,
    Upstream,
)
from dranspose.protocols.registry import Protocol

logger = logging.getLogger(__name__)

RCVHWM = 1000
"""ZMQ's default mark; kept for SUB upstreams (:data:`SUB_RCVHWM`)."""
PULL_RCVHWM = 16
"""Messages a PULL socket queues at most: 32 MB of 2 MB frames; the detector holds the rest."""
SUB_RCVHWM = RCVHWM
"""Messages a SUB socket queues at most before it is read (it is read all the time)."""
MIN_RCVHWM = 2
RECONNECT_IVL_MS = 100
RECONNECT_IVL_MAX_MS = 2000
_DRAIN = 256
_MONITORED = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED


class ZmqUpstream(Upstream):
    """A connected ZMQ socket with a monitor; reading is up to the subclass."""

    sock_type: int = zmq.PULL

    def __init__(
        self,
        protocol: Protocol,
        url: str,
        ctx: zmq.asyncio.Context,
        *,
        name: str,
        backlog: int = DEFAULT_BACKLOG,
        regroup: bool = True,
        backlog_bytes: int = DEFAULT_BACKLOG_BYTES,
    ) -> None:
        super().__init__(
            protocol, url, name=name, backlog=backlog, regroup=regroup, backlog_bytes=backlog_bytes
        )
        # a plain socket, read without blocking and waited for with Readable (pyzmq's asyncio
        # poll costs more than the message at moderate rates); its monitor is an asyncio socket
        self.socket: zmq.Socket[bytes] = zmq.Context.shadow(ctx.underlying).socket(self.sock_type)
        if self.sock_type == zmq.SUB:
            self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self.rcvhwm = SUB_RCVHWM if self.sock_type == zmq.SUB else PULL_RCVHWM
        """The socket's current receive high-water mark (messages)."""
        self.largest = 0
        """The largest message seen so far (bytes): what the mark is sized for."""
        self.socket.setsockopt(zmq.RCVHWM, self.rcvhwm)
        self.socket.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        self.socket.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        monitor_url = f"inproc://dranspose-monitor-{uuid.uuid4().hex}"
        self.socket.monitor(monitor_url, _MONITORED)
        self.monitor = ctx.socket(zmq.PAIR)
        self.monitor.connect(monitor_url)
        self.readable = Readable(self.socket)
        try:
            self.socket.connect(url)
        except zmq.ZMQError as exc:
            self._close_sockets()
            raise ValueError(
                f"upstream {url!r}: {exc.strerror}; expected a ZMQ address such as tcp://host:port"
            ) from exc
        self._tasks: list[asyncio.Task] = []
        self._waiting_logged = False

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._watch_connection()))

    def _read_batch(self, limit: int) -> list[list[Any]]:
        """Drain up to ``limit`` messages, but no more than the byte budget's worth."""
        if self.largest:
            limit = min(limit, max(MIN_RCVHWM, self.backlog_bytes_limit // self.largest))
        return drain(self.socket, limit)

    def _receive_batch(self, batch: list[list[Any]]) -> None:
        self._fit_mark(self._receive_all(batch))

    def _fit_mark(self, size: int) -> None:
        """Lower the receive mark so the socket queue holds no more than ``backlog_bytes``.

        Sized for the largest message seen; never raised (see the module docstring).
        """
        if size <= self.largest:
            return
        self.largest = size
        fit = max(MIN_RCVHWM, self.backlog_bytes_limit // max(size, 1))
        if fit < self.rcvhwm:
            self.rcvhwm = fit
            self.socket.setsockopt(zmq.RCVHWM, fit)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._close_sockets()

    def _close_sockets(self) -> None:
        try:
            self.socket.disable_monitor()
        except zmq.ZMQError:
            pass
        self.monitor.close(linger=0)
        self.readable.close()
        self.socket.close(linger=0)

    async def _watch_connection(self) -> None:
        while True:
            event = parse_monitor_message(await self.monitor.recv_multipart())
            kind = event["event"]
            if kind == zmq.EVENT_CONNECTED:
                self._waiting_logged = False
                again = " again" if self.state.connects else ""
                self._connected(f"connected{again} to {self.transport.upper()} upstream {self.url}")
            elif kind == zmq.EVENT_DISCONNECTED:
                self._disconnected(
                    f"{self.transport.upper()} upstream {self.url} went away; "
                    f"ZMQ reconnects by itself (retrying up to every "
                    f"{RECONNECT_IVL_MAX_MS / 1000:g} s)"
                )
            elif kind == zmq.EVENT_CONNECT_RETRIED and not self._waiting_logged:
                self._waiting_logged = True
                self.state.last_error = "not reachable yet"
                logger.info(
                    "stream %s: upstream %s not reachable yet; ZMQ keeps trying",
                    self.name,
                    self.url,
                )


class ZmqPullUpstream(ZmqUpstream):
    """Reads only when the ingester has taken everything: a PUSH detector waits meanwhile."""

    transport = "pull"
    sock_type = zmq.PULL

    def take(self) -> Optional[Queued]:
        if not self.backlog:
            self._receive_batch(self._read_batch(_DRAIN))
        return super().take()

    async def wait(self, timeout: float) -> None:
        # pop() drained first: the ZMQ fd is edge-triggered, so a poll started with messages
        # already queued could sleep its whole timeout
        if not self.backlog:
            await self.readable.wait(timeout)


class ZmqSubUpstream(ZmqUpstream):
    """Reads all the time; a full backlog drops new messages and counts them.

    A publisher never waits, so not reading would only move the loss into ZMQ's queues where
    nobody can count it. The protocol's message counter, when it has one, also reveals messages
    lost before they reached this socket.
    """

    transport = "sub"
    sock_type = zmq.SUB
    watches_counter = True

    async def start(self) -> None:
        await super().start()
        self._tasks.append(asyncio.create_task(self._read()))

    async def _read(self) -> None:
        while True:
            batch = self._read_batch(_DRAIN)
            if not batch:
                await self.readable.wait(1.0)
                continue
            self._receive_batch(batch)
            await asyncio.sleep(0)  # let the ingester forward between batches

    def _queue(self, item: Queued) -> None:
        if self.full:
            self._overflow(item)
            return
        self._overflow_ended()
        super()._queue(item)


def zmq_upstream(
    protocol: Protocol, url: str, ctx: zmq.asyncio.Context, sub: bool, **options: Any
) -> ZmqUpstream:
    cls = ZmqSubUpstream if sub else ZmqPullUpstream
    return cls(protocol, url, ctx, **options)

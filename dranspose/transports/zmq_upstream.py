"""ZMQ upstreams: PULL (read on demand, never loses) and SUB (read always, counts what it loses).

Both connect to the detector's bound socket; ZMQ reconnects by itself when the detector goes
away and comes back (here with back-off from 0.1 s up to 2 s), and a SUB socket subscribes again
on its own. A socket monitor reports every connection and disconnection to the log and to the
upstream's state, so an outage is visible while ZMQ retries quietly.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from dranspose.dataplane import drain
from dranspose.protocols import Protocol
from dranspose.transports.base import DEFAULT_BACKLOG, Message, Upstream

logger = logging.getLogger(__name__)

RCVHWM = 1000
RECONNECT_IVL_MS = 100
RECONNECT_IVL_MAX_MS = 2000
_DRAIN = 256
_MONITORED = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED


class ZmqUpstream(Upstream):
    """A connected ZMQ socket with a monitor; reading is up to the subclass."""

    sock_type: int = zmq.PULL

    def __init__(self, protocol: Protocol, url: str, ctx: zmq.asyncio.Context, *, name: str,
                 backlog: int = DEFAULT_BACKLOG, regroup: bool = True) -> None:
        super().__init__(protocol, url, name=name, backlog=backlog, regroup=regroup)
        self.socket = ctx.socket(self.sock_type)
        if self.sock_type == zmq.SUB:
            self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self.socket.setsockopt(zmq.RCVHWM, RCVHWM)
        self.socket.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        self.socket.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        self.monitor = self.socket.get_monitor_socket(_MONITORED)
        try:
            self.socket.connect(url)
        except zmq.ZMQError as exc:
            self._close_sockets()
            raise ValueError(f"upstream {url!r}: {zmq.strerror(exc.errno)}; expected a ZMQ "
                             f"address such as tcp://host:port") from exc
        self.sync = zmq.Socket.shadow(self.socket.underlying)
        self._tasks: list[asyncio.Task] = []
        self._waiting_logged = False

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._watch_connection()))

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
        self.socket.close(linger=0)

    async def _watch_connection(self) -> None:
        while True:
            event = parse_monitor_message(await self.monitor.recv_multipart())
            kind = event["event"]
            if kind == zmq.EVENT_CONNECTED:
                self._waiting_logged = False
                again = " again" if self.state.connects else ""
                self._connected(f"connected{again} to {self.transport.upper()} upstream "
                                f"{self.url}")
            elif kind == zmq.EVENT_DISCONNECTED:
                self._disconnected(f"{self.transport.upper()} upstream {self.url} went away; "
                                   f"ZMQ reconnects by itself (retrying up to every "
                                   f"{RECONNECT_IVL_MAX_MS / 1000:g} s)")
            elif kind == zmq.EVENT_CONNECT_RETRIED and not self._waiting_logged:
                self._waiting_logged = True
                self.state.last_error = "not reachable yet"
                logger.info("stream %s: upstream %s not reachable yet; ZMQ keeps trying",
                            self.name, self.url)


class ZmqPullUpstream(ZmqUpstream):
    """Reads only when the ingester has taken everything: a PUSH detector waits meanwhile."""

    transport = "pull"
    sock_type = zmq.PULL

    def pop(self) -> Optional[Message]:
        if not self.backlog:
            for message in drain(self.sync, _DRAIN):
                self._receive(message)
        return super().pop()

    async def wait(self, timeout: float) -> None:
        # pop() drained first: the ZMQ fd is edge-triggered, so a poll started with messages
        # already queued could sleep its whole timeout
        if not self.backlog:
            await self.socket.poll(int(timeout * 1000), zmq.POLLIN)


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
            batch = drain(self.sync, _DRAIN)
            if not batch:
                await self.socket.poll(1000, zmq.POLLIN)
                continue
            for message in batch:
                self._receive(message)
            await asyncio.sleep(0)  # let the ingester forward between batches

    def _queue(self, item: Message) -> None:
        if self.full:
            self._overflow(item)
            return
        self._overflow_ended()
        super()._queue(item)


def zmq_upstream(protocol: Protocol, url: str, ctx: zmq.asyncio.Context, sub: bool,
                 **options: Any) -> ZmqUpstream:
    cls = ZmqSubUpstream if sub else ZmqPullUpstream
    return cls(protocol, url, ctx, **options)

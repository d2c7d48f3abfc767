"""The ZeroMQ data plane: frames from ingesters to workers, results from workers to the reducer.

Every receiving component binds one PULL socket and advertises its address in the registry;
senders keep one PUSH socket per peer. PUSH blocks at the high-water mark instead of dropping, so
a slow worker slows its ingesters down (backpressure) and nothing is lost in transit. A sender
that may give up (the peer left the scan: it died or its network is cut) waits in bounded steps
and asks between them, so an unreachable peer cannot stall every other stream. Frames are
passed through as ``zmq.Frame`` objects with ``copy=False``: a large detector frame read from
upstream reaches the worker without being copied in Python.

Two sockets are lent to one thread for a whole scan, so that the payload thread of a worker or
of the reducer does its own sending or receiving without waking the event loop per message:
:class:`ThreadInbox` (the reducer receives) and :class:`ThreadOutbox` (a worker sends its
results). The messages themselves (headers, packed frames) are :mod:`dranspose.io.messages`;
their names are re-exported here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from typing import Any, Callable, Optional, Sequence

import zmq
import zmq.asyncio

from dranspose.io.messages import (
    COPY_THRESHOLD,
    PartialBatch,
    PartialEventsHeader,
    PartialHeader,
    ResultItem,
    decode_partial,
    decode_results,
    pack,
    unpack,
)

__all__ = [
    "COPY_THRESHOLD",
    "GIVE_UP_CHECK_SECONDS",
    "ZERO_COPY_BYTES",
    "Inbox",
    "Outboxes",
    "PartialBatch",
    "PartialEventsHeader",
    "PartialHeader",
    "Readable",
    "ResultItem",
    "ThreadInbox",
    "ThreadOutbox",
    "blocking_view",
    "decode_partial",
    "decode_results",
    "drain",
    "pack",
    "recv_message",
    "send_message",
    "unpack",
]

logger = logging.getLogger(__name__)

ZERO_COPY_BYTES = 1024 * 1024
"""A ``bytes`` part larger than this is sent zero-copy; a smaller one is copied into the message.
Zero-copy hands the object to pyzmq's garbage-collector thread, which wakes (and takes the GIL)
to release it once sent: for a packed batch of small frames (up to 1 MB) that cost more than the
copy. ``zmq.Frame`` parts (frames read from upstream) are always passed on without a copy."""
GIVE_UP_CHECK_SECONDS = 0.25
"""How often a send blocked at the high-water mark asks whether to give up."""
_NOBLOCK = int(zmq.NOBLOCK)
_POLLIN = int(zmq.POLLIN)
_NOBLOCK_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)
"""Plain ints: pyzmq's ``send_multipart`` combines enum flags in Python for every frame."""


class Readable:
    """Waits, in the event loop, until a ZMQ socket has a message to receive.

    pyzmq's asyncio ``poll`` builds a poller, futures and a timer in Python for every call; at
    moderate rates, where each message wakes its receiver alone, that was the larger part of a
    receiver's CPU per message. Here the socket's ``ZMQ_FD`` is registered with the loop once; it
    signals that the socket's events may have changed, and reading ``ZMQ_EVENTS`` (which the
    callback always does) both tells whether a message is there and resets the signal, so the
    loop's level-triggered polling does not spin on it. A wait is one future and one timer.
    """

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self.sock = sock
        self.fd = int(sock.get(zmq.FD))  # an int on every platform this runs on
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._waiter: Optional[asyncio.Future[bool]] = None

    def has_message(self) -> bool:
        return bool(int(self.sock.get(zmq.EVENTS)) & _POLLIN)

    def _signalled(self) -> None:
        ready = self.has_message()  # read in any case: it resets the descriptor's signal
        waiter = self._waiter
        if ready and waiter is not None and not waiter.done():
            waiter.set_result(True)

    @staticmethod
    def _expire(waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            waiter.set_result(False)

    async def wait(self, timeout: float) -> bool:
        """Whether a message is there, waiting up to ``timeout`` seconds for one."""
        if self.has_message():
            return True
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self._loop.remove_reader(self.fd)
            loop.add_reader(self.fd, self._signalled)
            self._loop = loop
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(timeout, self._expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def close(self) -> None:
        """Unregister from the loop (before the socket is closed)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.fd)
        self._loop = None


class Inbox:
    """A bound PULL socket: where a worker or the reducer receives its messages."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        bind: str = "tcp://*:0",
        advertise_host: Optional[str] = None,
        hwm: int = 1000,
    ) -> None:
        # a plain socket of the same context: it is read without blocking and waited for with
        # Readable, never through pyzmq's asyncio layer
        self.socket: zmq.Socket[bytes] = zmq.Context.shadow(ctx.underlying).socket(zmq.PULL)
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(bind)
        self._readable = Readable(self.socket)
        endpoint: str = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        port = endpoint.rsplit(":", 1)[1]
        host = advertise_host or "127.0.0.1"
        self.url = f"tcp://{host}:{port}"

    async def recv_batch(self, timeout_ms: int, limit: int = 256) -> list[list[zmq.Frame]]:
        """Every message waiting now (up to ``limit``); waits up to ``timeout_ms`` only if none is.

        Draining before waiting matters: the ZMQ file descriptor is edge-triggered, so a wait
        started while messages are already queued may sleep for its whole timeout.
        """
        batch = drain(self.socket, limit)
        if not batch and await self._readable.wait(timeout_ms / 1000):
            batch = drain(self.socket, limit)
        return batch

    async def poll(self, timeout_ms: int) -> bool:
        return await self._readable.wait(timeout_ms / 1000)

    def hand_over(self, ctx: zmq.Context[Any]) -> ThreadInbox:
        """Lend the socket to one thread (a payload thread that receives for a whole scan).

        The event loop stops watching it until the returned inbox is closed; the next
        :meth:`recv_batch` watches it again.
        """
        self._readable.close()
        return ThreadInbox(ctx, self.socket)

    def close(self) -> None:
        self._readable.close()
        self.socket.close(linger=0)


class ThreadInbox:
    """An inbox socket read by one thread, which the event loop can wake (:meth:`wake`).

    The reducer lets its payload thread receive for a scan: with the event loop receiving and
    queuing for the thread, each message cost a wake-up of both threads, and the GIL changed
    hands at every socket call. The thread waits in a ZMQ poll on the inbox and on an inproc
    pair the event loop signals through (to stop it).
    Only the thread uses the inbox socket and its end of the pair meanwhile; only the loop uses
    the other end.
    """

    def __init__(self, ctx: zmq.Context[Any], sock: zmq.Socket[bytes]) -> None:
        self.socket = sock
        url = f"inproc://dranspose-wake-{uuid.uuid4().hex}"
        self._wakeable: zmq.Socket[bytes] = ctx.socket(zmq.PAIR)
        self._wakeable.bind(url)
        self._waker: zmq.Socket[bytes] = ctx.socket(zmq.PAIR)
        self._waker.connect(url)
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._wakeable, zmq.POLLIN)

    def wake(self) -> None:
        """Called by the event loop: the thread's current or next wait returns at once."""
        try:
            self._waker.send(b"", _NOBLOCK)
        except zmq.Again:
            pass  # a wake-up is already queued

    def receive(self, timeout: Optional[float], limit: int = 256) -> list[list[zmq.Frame]]:
        """Called by the thread: the messages waiting (up to ``limit``); if none is, waits up to
        ``timeout`` seconds (None: until a message or a wake-up) for one."""
        batch = drain(self.socket, limit)
        if not batch:
            self._poller.poll(None if timeout is None else math.ceil(timeout * 1000))
            batch = drain(self.socket, limit)
        drain(self._wakeable, 1000)  # the wake-ups are taken; the caller looks at its flags
        return batch

    def close(self) -> None:
        """Called by the event loop once the thread is done; the inbox socket stays open."""
        self._wakeable.close(linger=0)
        self._waker.close(linger=0)


class ThreadOutbox:
    """A PUSH socket one thread sends on for a whole scan: a worker's results to the reducer.

    Sending from the payload thread itself spares the event loop a wake-up per batch. The event
    loop creates it before the thread starts, with the peer's address when it is known; when it
    is not (no reducer registered yet), the loop keeps looking and gives it with
    :meth:`connect_later`, and the thread connects at its next send. From then on only the
    thread uses the socket, until :meth:`close`, which the thread calls last.

    A send waits while the peer's queue is full (backpressure), in steps of
    :data:`GIVE_UP_CHECK_SECONDS`, asking ``give_up`` between them, so that a component told to
    stop does not wait for a peer that is gone.
    """

    def __init__(
        self,
        ctx: zmq.Context[Any],
        url: Optional[str],
        give_up: Callable[[], bool],
        hwm: int = 1000,
        peer: str = "reducer",
    ) -> None:
        self._ctx = ctx
        self._peer = peer
        self._hwm = hwm
        self._give_up = give_up
        self._url = url
        """Where to connect (written once by the event loop when it was not known at first)."""
        self._socket: Optional[zmq.Socket[bytes]] = None

    def connect_later(self, url: str) -> None:
        """Called by the event loop: the peer's address, for the thread's next send."""
        self._url = url

    @property
    def has_peer(self) -> bool:
        """Whether the peer's address is known."""
        return self._url is not None

    def _connected(self) -> Optional[zmq.Socket[bytes]]:
        if self._socket is None and self._url is not None:
            sock: zmq.Socket[bytes] = self._ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.SNDHWM, self._hwm)
            sock.connect(self._url)
            self._socket = sock
        return self._socket

    def send(self, parts: Sequence[Any]) -> bool:
        """Called by the thread: queue one multipart message; False when it was dropped (no
        peer known yet, or ``give_up()`` while the peer's queue was full), which is logged."""
        sock = self._connected()
        if sock is None:
            logger.error("no %s registered: a message of %d frames dropped", self._peer, len(parts))
            return False
        while True:
            try:
                send_message(sock, parts)
                return True
            except zmq.Again:
                if self._give_up():
                    logger.error(
                        "stopping: a message of %d frames to the %s not sent",
                        len(parts),
                        self._peer,
                    )
                    return False
                sock.poll(int(GIVE_UP_CHECK_SECONDS * 1000), zmq.POLLOUT)

    def close(self, linger_ms: int = 2000) -> None:
        """Called by the thread when it is done: what is queued still leaves for ``linger_ms``."""
        if self._socket is not None:
            self._socket.close(linger=linger_ms)
            self._socket = None


class Outboxes:
    """One PUSH socket per peer address, connected on first use.

    ``blocked_seconds`` adds up the time sends waited for a full peer queue (backpressure).
    """

    def __init__(self, ctx: zmq.asyncio.Context, hwm: int = 1000) -> None:
        self.ctx = ctx
        self.hwm = hwm
        self.sockets: dict[str, tuple[zmq.asyncio.Socket, zmq.Socket[bytes]]] = {}
        self.blocked_seconds = 0.0

    def socket_for(self, url: str) -> tuple[zmq.asyncio.Socket, zmq.Socket[bytes]]:
        pair = self.sockets.get(url)
        if pair is None:
            sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.SNDHWM, self.hwm)
            sock.setsockopt(zmq.LINGER, 2000)
            sock.connect(url)
            pair = self.sockets[url] = (sock, blocking_view(sock))
        return pair

    async def send(
        self, url: str, parts: Sequence[Any], give_up: Optional[Callable[[], bool]] = None
    ) -> bool:
        """Send one multipart message; waits (backpressure) only when the peer's queue is full.

        Without ``give_up`` the wait is unbounded: the peer is expected to read eventually.
        With it, a full queue is retried in steps of ``GIVE_UP_CHECK_SECONDS`` and the message
        is dropped (returns False) once ``give_up()`` is true, e.g. when the peer was declared
        dead and its events are already reported lost. Returns True when the message was queued.
        """
        sock, sync = self.socket_for(url)
        try:
            # the common case needs no future: the queue has room
            send_message(sync, parts)
            return True
        except zmq.Again:
            pass
        copy = all(map(_copied, parts))  # the asyncio send takes one flag for all parts
        started = time.monotonic()
        try:
            if give_up is None:
                await sock.send_multipart(parts, copy=copy)
                return True
            while True:
                try:
                    # a send cancelled by the timeout is never sent later (pyzmq skips it), and a
                    # multipart message is queued whole or not at all, so a retry cannot duplicate
                    await asyncio.wait_for(
                        sock.send_multipart(parts, copy=copy), GIVE_UP_CHECK_SECONDS
                    )
                    return True
                except asyncio.TimeoutError:
                    if give_up():
                        return False
        finally:
            self.blocked_seconds += time.monotonic() - started

    def close(self) -> None:
        for url in list(self.sockets):
            self.sockets.pop(url)[0].close(linger=0)


def blocking_view(sock: zmq.asyncio.Socket) -> zmq.Socket[bytes]:
    """A blocking-API view of the same libzmq socket: a send or receive that would not block
    then costs no future, which the asyncio socket creates for every call (the hot path)."""
    view: zmq.Socket[bytes] = zmq.Socket.shadow(sock.underlying)
    return view


def recv_message(sock: zmq.Socket[bytes]) -> list[zmq.Frame]:
    """One waiting multipart message, without blocking (raises ``zmq.Again`` if none is).

    Each frame's ``more`` flag says whether another follows: half the cost of
    ``recv_multipart``, which asks the socket (``RCVMORE``) after every frame.
    """
    frame = sock.recv(_NOBLOCK, copy=False)
    parts = [frame]
    while frame.more:  # the rest of a multipart message is there once its first frame is
        frame = sock.recv(_NOBLOCK, copy=False)
        parts.append(frame)
    return parts


def send_message(sock: zmq.Socket[bytes], parts: Sequence[Any]) -> None:
    """Queue one multipart message without blocking (raises ``zmq.Again`` if the peer's queue
    is full; then nothing was queued: ZMQ takes a multipart message whole or not at all).

    Each part is copied or not by what it is (:data:`ZERO_COPY_BYTES`). ``send_multipart`` does
    the same with one copy flag and an enum operation per frame.
    """
    last = len(parts) - 1
    for index, part in enumerate(parts):
        sock.send(part, _NOBLOCK if index == last else _NOBLOCK_MORE, copy=_copied(part))


def _copied(part: Any) -> bool:
    """Whether a part is copied into its message (:data:`ZERO_COPY_BYTES`)."""
    return not isinstance(part, zmq.Frame) and len(part) <= ZERO_COPY_BYTES


def drain(sock: zmq.Socket[bytes], limit: int) -> list[list[zmq.Frame]]:
    """Receive without blocking until the queue is empty or ``limit`` messages were read."""
    batch: list[list[zmq.Frame]] = []
    while len(batch) < limit:
        try:
            batch.append(recv_message(sock))
        except zmq.Again:
            break
    return batch

"""The ZeroMQ data plane: frames from ingesters to workers, results from workers to the reducer.

Every receiving component binds one PULL socket and advertises its address in the registry;
senders keep one PUSH socket per peer. PUSH blocks at the high-water mark instead of dropping, so
a slow worker slows its ingesters down (backpressure) and nothing is lost in transit. A sender
that may give up (the peer left the scan: it died or its network is cut) waits in bounded steps
and asks between them, so an unreachable peer cannot stall every other stream. Frames are
passed through as ``zmq.Frame`` objects with ``copy=False``: a large detector frame read from
upstream reaches the worker without being copied in Python.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
import uuid
from typing import Any, Callable, NamedTuple, Optional, Sequence, Union

import zmq
import zmq.asyncio

from dranspose.core.construct import trusted
from dranspose.core.coordination import ResultHeader
from dranspose.core.event import StreamData
from dranspose.core.protocol import EventNumber, StreamName

FrameLike = Union[bytes, zmq.Frame, memoryview]
COPY_THRESHOLD = 64 * 1024
"""Frames above this size stay ``zmq.Frame`` objects (zero-copy) on the receiving side; small ones
are copied into ``bytes`` (and packed together on the way: :func:`pack`)."""
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


class PartialBatch(NamedTuple):
    """What one ingester-to-worker message carries: one stream's frames of consecutive events,
    as ``(event number, frames, their bytes)``."""

    stream: StreamName
    events: list[tuple[EventNumber, StreamData, int]]


class PartialHeader:
    """Builds the ingester-to-worker messages of one scan and stream (header frame and frames).

    One message carries the frames of one or more consecutive events of this stream that go to
    the same workers: ``"events": [[event, frame count], ...]`` says how the frames split into
    events. Batching what the upstream delivered back to back makes one send (and one receive at
    the worker) per batch instead of per event, the main per-event cost at small frames. The JSON
    text is assembled from a precomputed prefix.

    Small frames (up to COPY_THRESHOLD, which the worker copies into ``bytes`` anyway) travel
    packed into one frame after the header, and ``"packed"`` gives every frame's length in order
    (-1 for a large frame, which follows as a frame of its own, zero-copy): ZMQ's cost is per
    frame (a send, a receive and the I/O threads' work each), so a batch of sixty 2 kB events was
    120 of them. A message without ``"packed"`` carries every frame as its own.
    """

    def __init__(self, scan_id: str, stream: str, typ: str) -> None:
        prefix = json.dumps({"scan": scan_id, "stream": stream, "typ": typ})[:-1]
        self._template = prefix + ', "events": %s}'
        self._packed_template = prefix + ', "events": %s, "packed": %s}'

    def __call__(self, events: Sequence[tuple[int, int]]) -> bytes:
        """The header of a message with these ``(event number, frame count)`` parts, each frame
        its own."""
        return (self._template % json.dumps(events, separators=(",", ":"))).encode()

    def message(self, events: Sequence[tuple[int, Sequence[Any]]]) -> list[Any]:
        """The parts of one message carrying these ``(event number, frames)``, small frames
        packed."""
        lengths, frames = pack([f for _, event_frames in events for f in event_frames])
        counts = [(event, len(event_frames)) for event, event_frames in events]
        if lengths is None:
            return [self(counts), *frames]
        header = self._packed_template % (
            json.dumps(counts, separators=(",", ":")),
            json.dumps(lengths, separators=(",", ":")),
        )
        return [header.encode(), *frames]


def pack(frames: Sequence[Any]) -> tuple[Optional[list[int]], list[Any]]:
    """The frames to send for ``frames``: those up to COPY_THRESHOLD joined into one (first),
    the large ones after it as they are; and every frame's length in order, -1 for a large one
    (None when nothing was packed: then the frames go as they are).

    ZMQ's cost is per frame (a send, a receive, the I/O threads' work), and the receiver copies
    small frames into ``bytes`` anyway: a batch of sixty small events or results is then one
    frame instead of sixty or more. :func:`unpack` reverses it.
    """
    lengths: list[int] = []
    small: list[Any] = []
    large: list[Any] = []
    for frame in frames:
        length = len(frame)
        if length <= COPY_THRESHOLD:
            lengths.append(length)
            small.append(frame)
        else:
            lengths.append(-1)
            large.append(frame)
    if not small:
        return None, large
    return lengths, [b"".join(small), *large]


def unpack(lengths: list[int], announced: int, parts: Sequence[Any]) -> list[Any]:
    """The frames :func:`pack` packed, from the message parts after the header (``parts[0]``):
    small ones as ``bytes`` cut from the packed frame, large ones as they came.

    Raises unless the header's ``announced`` frame count, the lengths and the parts agree."""
    large = len(parts) - 2
    if (
        len(lengths) != announced
        or lengths.count(-1) != large
        or large < 0
        or min(lengths, default=0) < -1
    ):
        raise ValueError(
            f"header announces {announced} frames, {len(lengths)} lengths of which "
            f"{lengths.count(-1)} large; the message has {len(parts) - 1} frames"
        )
    blob = parts[1].bytes if isinstance(parts[1], zmq.Frame) else bytes(parts[1])
    packed = sum(lengths) + large  # each -1 stands for a large frame
    if packed != len(blob):
        raise ValueError(
            f"packed frame has {len(blob)} bytes, the header's lengths add up to {packed}"
        )
    # cut in C (a Python loop cost 0.4 us a frame)
    ends = list(itertools.accumulate(lengths if not large else [n for n in lengths if n >= 0]))
    small = list(map(blob.__getitem__, map(slice, [0, *ends[:-1]], ends)))
    if not large:  # the common case
        return small
    cut, rest = iter(small), iter(parts[2:])
    return [next(rest) if n < 0 else next(cut) for n in lengths]


def decode_partial(parts: list[zmq.Frame]) -> tuple[str, PartialBatch]:
    """Scan id and the partial events (one per event of the batch) carried by one message.

    Raises on a malformed message: frame counts or lengths that do not add up to the frames
    present, so frames are never attributed to the wrong event."""
    header = json.loads(parts[0].bytes)
    stream, typ = StreamName(header["stream"]), header["typ"]
    events = header["events"]
    packed = header.get("packed")
    announced = sum(count for _, count in events)
    if packed is not None:
        frames = unpack(packed, announced, parts)
    elif announced != len(parts) - 1:
        raise ValueError(
            f"header announces {announced} frames for events "
            f"{[e for e, _ in events]}, the message has {len(parts) - 1}"
        )
    else:
        frames = [f.bytes if len(f) <= COPY_THRESHOLD else f for f in parts[1:]]
    # the frames' sizes: the header's lengths when it has them all (summing a slice runs in C)
    sizes = packed if packed is not None and -1 not in packed else [len(f) for f in frames]
    partials: list[tuple[EventNumber, StreamData, int]] = []
    at = 0
    for number, count in events:
        end = at + count
        partials.append(
            (
                number,
                trusted(StreamData, {"typ": typ, "frames": frames[at:end]}),
                sum(sizes[at:end]),
            )
        )
        at = end
    return header["scan"], PartialBatch(stream, partials)


class ResultItem(NamedTuple):
    """One result of a worker-to-reducer message: its event, whether it was re-delivered, and
    the pickled payload."""

    event_number: EventNumber
    redelivered: bool
    body: bytes


def decode_results(parts: list[zmq.Frame]) -> tuple[ResultHeader, list[ResultItem]]:
    """The header of one worker-to-reducer message and its results: a ``kind="results"``
    header with one item per announced event, or a ``worker_done`` header with none.

    Raises on a malformed message (the caller drops it whole and says so)."""
    header = ResultHeader.model_validate_json(parts[0].bytes)
    if header.kind == "worker_done":
        return header, []
    if header.kind != "results":
        raise ValueError(f"expected a results or worker_done header, got kind {header.kind!r}")
    if header.packed is None and len(header.events) != len(parts) - 1:
        raise ValueError(
            f"header of {header.worker} announces {len(header.events)} results, "
            f"the message has {len(parts) - 1}"
        )
    if not header.events:
        raise ValueError(f"empty result message from {header.worker}")
    again = set(header.redelivered_events)
    if header.packed is not None:
        bodies = unpack(header.packed, len(header.events), parts)
    else:
        bodies = parts[1:]
    make = tuple.__new__  # the NamedTuple's own constructor is a Python call per result
    return header, [
        make(ResultItem, (number, number in again, body if type(body) is bytes else body.bytes))
        for number, body in zip(header.events, bodies)
    ]

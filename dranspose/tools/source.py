"""Synthetic upstreams: servers that stream like a detector, for demos, tests and benchmarks.

:class:`StinsSource` serves generated STINS ("stream1") series; :class:`RawCaptureSource` serves
the messages of a capture file again. Both bind one ZMQ socket, PUSH by default (what an area
detector's stream offers) or PUB. Given a protocol, :class:`RawCaptureSource` plays the capture
over the transport that protocol uses: PUSH, PUB, a TCP server (PandA data port) or an HTTP
client posting to the ingester (Sardana); see :mod:`dranspose.tools.playback`.

A PUSH socket only sends when a receiver is connected and below its high-water mark, so a PULL
ingester never loses a message: the source simply waits. A PUB socket never waits and drops
whatever no subscriber takes, including everything sent before a subscriber has connected,
unless it is told to wait for ``subscribers`` first.

Each source runs in a background thread, as a context manager or with
``start()``/``wait_done()``/``stop()``, or blocking with ``run()``. Every wait inside is bounded
(at most 100 ms between looks at the stop flag), so ``stop()`` returns promptly even while the
source waits for a receiver; stopping closes the socket with linger 0, dropping unsent messages.
A source that was not stopped is *done* once ZMQ has written its last message to the network.

Generated images follow one rule, so receivers can recompute them::

    pool = numpy.random.default_rng(seed).integers(0, 1000, size=(pool_size, *shape)).astype(dtype)
    image with frame number k = pool[k % pool_size]

The pool is made once (``pool_size`` defaults to 8) and every series repeats it, so generating
data never limits the send rate; uncompressed images of 64 kB and more are sent without copying.
"""

from __future__ import annotations

import logging
import math
import operator
import os
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Iterator, Optional, Sequence, Union

import numpy as np
import zmq

from dranspose.io.capture import CaptureError, PathLike, read_capture, read_raw_capture
from dranspose.protocols.registry import get_protocol
from dranspose.protocols.stream1.packets import Stream1Data, Stream1End, Stream1Start
from dranspose.tools.playback import (
    HttpPostSender,
    Sender,
    SenderError,
    TcpServerSender,
    ZmqSender,
)

logger = logging.getLogger(__name__)

__all__ = ["POOL_SIZE", "RawCaptureSource", "SendStats", "SourceError", "StinsSource"]

POOL_SIZE = 8
"""Distinct images a :class:`StinsSource` generates and then cycles through."""

COMPRESSIONS = ("none", "bslz4")
SOCKET_TYPES = {"PUSH": zmq.PUSH, "PUB": zmq.PUB}
TRANSPORTS = ("PUSH", "PUB", "TCP", "HTTP")
"""What a source can send over; TCP and HTTP need a protocol that says how."""
_SOCKET_FOR = {"pull": "PUSH", "sub": "PUB", "tcp": "TCP", "http": "HTTP"}

_WAIT_SECONDS = 0.1
"""Longest a source waits at once before looking at its stop flag again."""
_NUMERIC_KINDS = "biufc"


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


class _Stopped(Exception):
    """Raised inside the sender when the stop flag is seen."""


@dataclass(frozen=True)
class _Pause:
    seconds: float


_Item = Union[tuple[list[bytes], bool], _Pause]
"""What a source produces: ``(frames, paced)`` for one message, or a pause."""
_END = object()


class _ZmqSource:
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
        if _as_int(subscribers) is None or subscribers < 0:
            raise ValueError(f"subscribers must be a non-negative integer, got {subscribers!r}")
        if subscribers and kind != "PUB":
            raise ValueError(f"subscribers only apply to a PUB source, not {kind}")
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, (int, float)):
                raise ValueError(f"rate must be a number of messages per second, got {rate!r}")
            if not math.isfinite(rate) or rate <= 0:
                raise ValueError(f"rate must be positive and finite, got {rate!r}")
        if hwm is not None and (_as_int(hwm) is None or hwm < 0):
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

    def _items(self) -> Iterator[_Item]:
        raise NotImplementedError

    # -- public control ---------------------------------------------------------------------

    def start(self) -> _ZmqSource:
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

    def __enter__(self) -> _ZmqSource:
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
        except _Stopped:
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
        while current is not _END:
            following, failure = _advance(items)
            if isinstance(current, _Pause):
                self._pause(current.seconds)
            else:
                frames, paced = current  # type: ignore[misc]
                self._send(frames, paced, last=following is _END)
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
            raise _Stopped

    def _sleep_until(self, deadline: float) -> None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._stop.wait(min(remaining, _WAIT_SECONDS)):
                raise _Stopped

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


def _advance(items: Iterator[_Item]) -> tuple[object, Optional[BaseException]]:
    try:
        return next(items), None
    except StopIteration:
        return _END, None
    except Exception as exc:
        return _END, exc


def _as_int(value: object) -> Optional[int]:
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


class StinsSource(_ZmqSource):
    """Serve generated STINS series, like an area detector's stream.

    Each series is a ``header`` message (``msg_number`` 0, ``filename``), ``frames`` image
    messages (``msg_number`` 1..frames, ``frame`` 0..frames-1) and a ``series_end`` message
    (``msg_number`` frames+1); ``n_series`` series are sent in a row, ``pause`` seconds apart.
    ``rate`` limits image messages to that many per second (None: as fast as the receiver
    takes them); the schedule restarts after each pause and after a slow receiver held the
    source up, so there is no catch-up burst. See the module docstring for the pixel values.
    A PUB source with ``subscribers`` waits until that many have subscribed before sending.
    """

    def __init__(
        self,
        bind: str,
        shape: Sequence[int] = (10, 10),
        dtype: Union[str, np.dtype] = "uint16",
        frames: int = 10,
        compression: str = "none",
        filename: str = "",
        rate: Optional[float] = None,
        seed: int = 0,
        sock_type: str = "PUSH",
        *,
        n_series: int = 1,
        pause: float = 0.0,
        pool_size: int = POOL_SIZE,
        hwm: Optional[int] = None,
        subscribers: int = 0,
    ) -> None:
        super().__init__(bind, sock_type, rate, hwm, subscribers=subscribers)
        self.shape = _check_shape(shape)
        self.dtype = _check_dtype(dtype)
        self.frames = _check_count("frames", frames, minimum=0)
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be 'none' or 'bslz4', got {compression!r}")
        self.compression = compression
        if not isinstance(filename, str):
            raise ValueError(f"filename must be a string, got {filename!r}")
        self.filename = filename
        self.seed = _check_count("seed", seed, minimum=0)
        self.n_series = _check_count("n_series", n_series, minimum=1)
        if (
            isinstance(pause, bool)
            or not isinstance(pause, (int, float))
            or not (math.isfinite(pause) and pause >= 0)
        ):
            raise ValueError(f"pause must be a non-negative number of seconds, got {pause!r}")
        self.pause = float(pause)
        self.pool_size = _check_count("pool_size", pool_size, minimum=1)
        self.pool = self._make_pool()
        """The distinct images, shape ``(pool_size, *shape)``; read-only."""
        self._payloads = [
            self._packet(i, msg_number=0).payload_frame() for i in range(self.pool_size)
        ]

    def _make_pool(self) -> np.ndarray:
        size = (self.pool_size, *self.shape)
        try:
            values = np.random.default_rng(self.seed).integers(0, 1000, size=size)
            pool = values.astype(self.dtype)
        except MemoryError:
            needed = math.prod(size) * 8 / 1e9
            raise ValueError(
                f"shape {list(self.shape)} is too large: generating {self.pool_size} images "
                f"needs about {needed:.1f} GB"
            ) from None
        pool.flags.writeable = False  # payloads are shared with ZMQ, never modified
        return pool

    def image(self, frame: int) -> np.ndarray:
        """The pixels of image ``frame`` (counted from 0 in each series)."""
        return self.pool[frame % self.pool_size]

    def _packet(self, frame: int, msg_number: int) -> Stream1Data:
        return Stream1Data.from_array(
            self.image(frame), msg_number=msg_number, frame=frame, compression=self.compression
        )

    def _one_series(self) -> Iterator[tuple[list[bytes], bool]]:
        start = Stream1Start(msg_number=0, htype="header", filename=self.filename)
        yield list(start.to_stream_data().frames), False
        # One packet serves as the header template of every image: shape, type and compression
        # are the same for all, only msg_number and frame change (validating a new packet per
        # image would cost more than sending a small one). Its data is not used: payloads are
        # the pre-encoded pool.
        template = self._packet(0, msg_number=1)
        for frame in range(self.frames):
            template.msg_number = frame + 1
            template.frame = frame
            yield [template.header_frame(), self._payloads[frame % self.pool_size]], True
        end = Stream1End(msg_number=self.frames + 1, htype="series_end")
        yield list(end.to_stream_data().frames), False

    def series(self, n_series: int = 1) -> Iterator[list[bytes]]:
        """The frames of ``n_series`` complete series, one list per message, without sending.

        This is exactly what the source sends (apart from pauses); useful to feed the same data
        elsewhere or to compare with what a receiver got.
        """
        count = _check_count("n_series", n_series, minimum=0)
        for _ in range(count):
            for frames, _paced in self._one_series():
                yield frames

    def _items(self) -> Iterator[_Item]:
        for index in range(self.n_series):
            if index and self.pause:
                yield _Pause(self.pause)
            yield from self._one_series()

    def describe(self) -> str:
        what = (
            f"{self.n_series} x {self.frames} STINS images {list(self.shape)} "
            f"{self.dtype.name} ({self.compression})"
        )
        if self.rate is not None:
            what += f" at {self.rate:g} Hz"
        return f"{self.sock_type} source of {what}"


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        dims = list(shape)
    except TypeError:
        raise ValueError(f"shape must be a sequence of positive integers, got {shape!r}") from None
    ints = [_as_int(d) for d in dims]
    if not dims or any(d is None or d < 1 for d in ints):
        raise ValueError(f"shape must be one or more positive integers, got {list(dims)!r}")
    return tuple(int(d) for d in ints)  # type: ignore[arg-type]


def _check_dtype(dtype: Union[str, np.dtype]) -> np.dtype:
    try:
        result = np.dtype(dtype)
    except (TypeError, ValueError, SyntaxError):
        raise ValueError(
            f"dtype {dtype!r} is not a numpy dtype; expected e.g. 'uint16', 'uint32', 'float32'"
        ) from None
    if result.kind not in _NUMERIC_KINDS or result.itemsize == 0:
        raise ValueError(
            f"dtype {dtype!r} is not numeric; expected e.g. 'uint16', 'uint32', 'float32'"
        )
    return result


def _check_count(name: str, value: int, minimum: int) -> int:
    number = _as_int(value)
    if number is None or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


class RawCaptureSource(_ZmqSource):
    """Serve a capture file again, one ZMQ multipart message per recorded message.

    A raw capture (:func:`~dranspose.io.capture.read_raw_capture`) is sent item by item, each
    item's frames as one message. An ingester dump (:func:`~dranspose.io.capture.read_capture`,
    ``.cbors`` or ``.pkls``) is sent event by event: the frames of stream ``stream``, by default
    the first stream of the first event; events without that stream (or with no frames) are
    skipped. The kind of file is recognised from its first item. ``rate`` limits every message.

    The file is checked when the source starts: a missing file raises ``OSError``, a file that
    is neither kind raises :class:`~dranspose.io.capture.CaptureError`. Damage further on is
    raised by ``wait_done()`` after everything before it has been sent.

    ``protocol`` (a name from :mod:`dranspose.protocols.registry`) plays the capture as that protocol's
    upstream: PUSH for PULL protocols, PUB for SUB ones (waiting for ``subscribers``, by default
    one, so nothing is published into the void), a TCP server answering the client's request
    for TCP ones (``bind`` is ``tcp://host:port``), an HTTP client posting each message to the
    ingester for HTTP ones (``bind`` is then the ingester's ``http://host:port``).
    """

    _transports = TRANSPORTS

    def __init__(
        self,
        bind: str,
        path: PathLike,
        sock_type: Optional[str] = None,
        rate: Optional[float] = None,
        *,
        stream: Optional[str] = None,
        hwm: Optional[int] = None,
        protocol: Optional[str] = None,
        subscribers: Optional[int] = None,
    ) -> None:
        self.protocol = None
        if protocol is not None:
            try:
                self.protocol = get_protocol(protocol)
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
        natural = _SOCKET_FOR[self.protocol.socket] if self.protocol is not None else "PUSH"
        kind = sock_type.upper() if isinstance(sock_type, str) else (sock_type or natural)
        if kind in ("TCP", "HTTP") or natural in ("TCP", "HTTP"):
            if self.protocol is None:
                raise ValueError(f"a {kind} source needs a protocol saying how to send messages")
            if kind != natural:
                raise ValueError(
                    f"protocol {self.protocol.name!r} is sent over {natural}, not {kind}"
                )
        if subscribers is None:
            subscribers = 1 if self.protocol is not None and kind == "PUB" else 0
        super().__init__(bind, kind, rate, hwm, subscribers=subscribers)
        if kind in ("TCP", "HTTP"):
            self._make_sender()  # checks the address now, not when the thread starts
        self.path = os.fspath(path)
        self.stream = stream
        self.kind: Optional[str] = None
        """``"raw"`` or ``"dump"``, known once started."""
        self._iterator: Optional[Iterator] = None
        self._first: object = _END

    def _prepare(self) -> None:
        raw = read_raw_capture(self.path)
        try:
            self._first = next(raw, _END)
            self._iterator, self.kind = raw, "raw"
        except CaptureError as raw_error:
            if raw_error.index != 0:
                raise
            dump = read_capture(self.path)
            try:
                self._first = next(dump, _END)
            except CaptureError:
                raise raw_error from None
            self._iterator, self.kind = dump, "dump"
        if self.kind == "raw" and self.stream is not None:
            self._release()
            raise ValueError(
                f"{self.path}: is a raw capture (one upstream message per item); a stream "
                f"name only applies to ingester dumps"
            )
        if self.kind == "dump" and self._first is not _END:
            streams = list(self._first.streams)  # type: ignore[attr-defined]
            if self.stream is None:
                if not streams:
                    self._release()
                    raise ValueError(f"{self.path}: the first event has no streams")
                self.stream = streams[0]
            elif self.stream not in streams:
                self._release()
                raise ValueError(
                    f"{self.path}: stream {self.stream!r} is not in the first event "
                    f"(it has {', '.join(map(repr, streams)) or 'no streams'})"
                )

    def _make_sender(self) -> Sender:
        protocol = self.protocol
        if self.sock_type == "TCP" and protocol is not None and protocol.tcp is not None:
            return TcpServerSender(self.bind, protocol.tcp)
        if self.sock_type == "HTTP" and protocol is not None and protocol.http is not None:
            return HttpPostSender(self.bind, protocol.http)
        return super()._make_sender()

    def _release(self) -> None:
        iterator, self._iterator = self._iterator, None
        close = getattr(iterator, "close", None)
        if close is not None:
            close()

    def _replayed(self) -> Iterator[list[bytes]]:
        iterator = self._iterator
        if iterator is None or self._first is _END:
            return
        first, self._first = self._first, _END
        if self.kind == "raw":
            yield first  # type: ignore[misc]
            yield from iterator
            return
        for message in _chain_one(first, iterator):
            data = message.streams.get(self.stream)
            if data is None or not data.frames:
                logger.debug(
                    "event %s has no %r frames, skipped", message.event_number, self.stream
                )
                continue
            yield [bytes(f) if not isinstance(f, bytes) else f for f in data.frames]

    def _items(self) -> Iterator[_Item]:
        for frames in self._replayed():
            yield frames, True

    def describe(self) -> str:
        what = f"replay of {self.path}"
        if self.kind == "dump":
            what += f" (ingester dump, stream {self.stream!r})"
        elif self.kind == "raw":
            what += " (raw capture)"
        if self.protocol is not None:
            what += f" as {self.protocol.name}"
        if self.rate is not None:
            what += f" at {self.rate:g} Hz"
        return f"{self.sock_type} source, {what}"


def _chain_one(first: object, rest: Iterator) -> Iterator:
    yield first
    yield from rest

"""Synthetic upstreams: servers that stream like a detector, for demos, tests and benchmarks.

:class:`StinsSource` serves generated STINS ("stream1") series; :class:`RawCaptureSource` serves
the messages of a capture file again. Both bind one ZMQ socket, PUSH by default (what an area
detector's stream offers) or PUB. Given a protocol, :class:`RawCaptureSource` plays the capture
over the transport that protocol uses: PUSH, PUB, a TCP server (PandA data port) or an HTTP
client posting to the ingester (Sardana); see :mod:`dranspose.tools.playback`. What waits, what
is dropped and how a source is started and stopped is :mod:`dranspose.tools.source_base`'s.

Generated images follow one rule, so receivers can recompute them::

    pool = numpy.random.default_rng(seed).integers(0, 1000, size=(pool_size, *shape)).astype(dtype)
    image with frame number k = pool[k % pool_size]

The pool is made once (``pool_size`` defaults to 8) and every series repeats it, so generating
data never limits the send rate; uncompressed images of 64 kB and more are sent without copying.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import zmq

from dranspose.core.event import InternalWorkerMessage
from dranspose.core.protocol import StreamName
from dranspose.io.capture import CaptureError, PathLike, read_capture, read_raw_capture
from dranspose.protocols.registry import get_protocol
from dranspose.protocols.stream1.packets import Stream1Data, Stream1End, Stream1Start
from dranspose.tools.playback import HttpPostSender, Sender, TcpServerSender
from dranspose.tools.source_base import (
    Item,
    Pause,
    SendStats,
    SourceBase,
    SourceError,
    as_int,
)

logger = logging.getLogger(__name__)

__all__ = ["POOL_SIZE", "RawCaptureSource", "SendStats", "SourceError", "StinsSource"]

POOL_SIZE = 8
"""Distinct images a :class:`StinsSource` generates and then cycles through."""

COMPRESSIONS = ("none", "bslz4")
TRANSPORTS = ("PUSH", "PUB", "TCP", "HTTP")
"""What a source can send over; TCP and HTTP need a protocol that says how."""
_SOCKET_FOR = {"pull": "PUSH", "sub": "PUB", "tcp": "TCP", "http": "HTTP"}

_NUMERIC_KINDS = "biufc"


class StinsSource(SourceBase):
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
        yield [start.header_frame()], False
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
        yield [end.header_frame()], False

    def series(self, n_series: int = 1) -> Iterator[list[bytes]]:
        """The frames of ``n_series`` complete series, one list per message, without sending.

        This is exactly what the source sends (apart from pauses); useful to feed the same data
        elsewhere or to compare with what a receiver got.
        """
        count = _check_count("n_series", n_series, minimum=0)
        for _ in range(count):
            for frames, _paced in self._one_series():
                yield frames

    def _items(self) -> Iterator[Item]:
        for index in range(self.n_series):
            if index and self.pause:
                yield Pause(self.pause)
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
    ints = [n for n in map(as_int, dims) if n is not None and n >= 1]
    if not dims or len(ints) != len(dims):
        raise ValueError(f"shape must be one or more positive integers, got {list(dims)!r}")
    return tuple(ints)


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
    number = as_int(value)
    if number is None or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


class RawCaptureSource(SourceBase):
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
        self._opened: Optional[Iterator[Any]] = None
        """The capture reader, closed when the source ends."""
        self._messages: Iterator[list[bytes]] = iter(())

    def _prepare(self) -> None:
        raw = read_raw_capture(self.path)
        try:
            first = next(raw, None)
        except CaptureError as raw_error:
            if raw_error.index != 0:
                raise
            self._prepare_dump(raw_error)
            return
        self._opened, self.kind = raw, "raw"
        if self.stream is not None:
            self._release()
            raise ValueError(
                f"{self.path}: is a raw capture (one upstream message per item); a stream "
                f"name only applies to ingester dumps"
            )
        if first is not None:
            self._messages = itertools.chain([first], raw)

    def _prepare_dump(self, raw_error: CaptureError) -> None:
        """Open the file as an ingester dump; the raw reader's error if it is not one either."""
        dump = read_capture(self.path)
        try:
            first = next(dump, None)
        except CaptureError:
            raise raw_error from None
        self._opened, self.kind = dump, "dump"
        if first is None:
            return
        streams = list(first.streams)
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
        self._messages = _frames_of(itertools.chain([first], dump), self.stream)

    def _make_sender(self) -> Sender:
        protocol = self.protocol
        if self.sock_type == "TCP" and protocol is not None and protocol.tcp is not None:
            return TcpServerSender(self.bind, protocol.tcp)
        if self.sock_type == "HTTP" and protocol is not None and protocol.http is not None:
            return HttpPostSender(self.bind, protocol.http)
        return super()._make_sender()

    def _release(self) -> None:
        opened, self._opened = self._opened, None
        self._messages = iter(())
        close = getattr(opened, "close", None)
        if close is not None:
            close()

    def _items(self) -> Iterator[Item]:
        for frames in self._messages:
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


def _frames_of(events: Iterator[InternalWorkerMessage], stream: str) -> Iterator[list[bytes]]:
    """The frames of ``stream`` in each event of a dump; events without them are skipped."""
    for message in events:
        data = message.streams.get(StreamName(stream))
        if data is None or not data.frames:
            logger.debug("event %s has no %r frames, skipped", message.event_number, stream)
            continue
        # the senders take bytes: a zmq.Frame or another buffer from the file becomes bytes
        yield [f.bytes if isinstance(f, zmq.Frame) else bytes(f) for f in data.frames]

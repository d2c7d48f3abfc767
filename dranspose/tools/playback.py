"""The sending end of each transport, for sources that play a detector (``dranspose source``).

A :class:`Sender` is opened once (bind or check the target), then sends one message at a time
from the source's thread. Every wait is bounded and calls ``check_stop`` between looks, which
raises to end the source, so stopping is prompt whatever the sender waits for.

* :class:`ZmqSender`: PUSH waits for a receiver (a PULL ingester loses nothing); PUB never waits
  and drops what no subscriber takes, unless told to wait for ``subscribers`` first (then it is
  an XPUB socket that sees the subscriptions arrive).
* :class:`TcpServerSender`: a TCP server like the PandA data port: waits for one client, answers
  its request line, then writes each message's bytes; shuts its side down at the end.
* :class:`HttpPostSender`: an HTTP client like Sardana's recorder: posts each message to the
  ingester, waiting while the ingester is not listening yet or asks it to (503).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from typing import Callable, Optional

import zmq

from dranspose.io.transports.address import host_port
from dranspose.protocols.registry import HttpFraming, TcpFraming

logger = logging.getLogger(__name__)

StopCheck = Callable[[], None]
"""Raises when the source must stop."""

WAIT_SECONDS = 0.1
FLUSH_LINGER_MS = 1000
"""Linger when closing after the last message was written; only other PUSH peers' queues wait."""
HTTP_TIMEOUT_SECONDS = 60.0
"""Longest one post may take: an ingester with a full backlog holds a post up to 30 s."""


class SenderError(RuntimeError):
    """A sender cannot go on: its address cannot be used, or the receiver refused or left."""


class Sender:
    endpoint: Optional[str] = None
    """The address actually used (wildcards and ports resolved), once open."""

    def open(self) -> None:
        raise NotImplementedError

    def send(self, frames: list[bytes], last: bool, check_stop: StopCheck) -> float:
        """Send one message, waiting as the transport needs; returns the monotonic time the
        successful attempt started (waiting for a receiver before it does not count)."""
        raise NotImplementedError

    def flush(self, check_stop: StopCheck) -> None:
        """Wait until the last message is out."""

    def close(self, flushed: bool) -> None:
        raise NotImplementedError


class ZmqSender(Sender):
    def __init__(
        self, bind: str, kind: str, hwm: Optional[int] = None, subscribers: int = 0
    ) -> None:
        self.bind, self.kind, self.hwm, self.subscribers = bind, kind, hwm, subscribers
        self._ctx: Optional[zmq.Context] = None
        self._sock: Optional[zmq.Socket] = None
        self._tracker: Optional[zmq.MessageTracker] = None
        self._subscribed = 0

    def open(self) -> None:
        ctx = zmq.Context()
        xpub = self.kind == "PUB" and self.subscribers > 0
        sock = ctx.socket(zmq.XPUB if xpub else (zmq.PUSH if self.kind == "PUSH" else zmq.PUB))
        sock.linger = 0
        if xpub:
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscriber's subscription, not the first
        if self.hwm is not None:
            sock.sndhwm = self.hwm
        try:
            sock.bind(self.bind)
            endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except zmq.ZMQError as exc:
            sock.close(linger=0)
            ctx.term()
            reason = zmq.strerror(exc.errno) if exc.errno is not None else str(exc)
            raise SenderError(f"cannot bind {self.bind}: {reason}") from exc
        self._ctx, self._sock, self.endpoint = ctx, sock, endpoint

    def _wait_for_subscribers(self, check_stop: StopCheck) -> None:
        sock = self._sock
        assert sock is not None
        while self._subscribed < self.subscribers:
            if sock.poll(int(WAIT_SECONDS * 1000), zmq.POLLIN):
                message = sock.recv()
                if message[:1] == b"\x01":
                    self._subscribed += 1
            check_stop()

    def send(self, frames: list[bytes], last: bool, check_stop: StopCheck) -> float:
        sock = self._sock
        assert sock is not None
        if self._subscribed < self.subscribers:
            self._wait_for_subscribers(check_stop)
        parts: list = list(frames)
        if last:
            # Always zero-copy, so the tracker reports when ZMQ has written the message out.
            tail = zmq.Frame(parts[-1], copy=False, track=True)
            self._tracker = tail.tracker
            parts[-1] = tail
        while True:
            try:
                attempt = time.monotonic()
                sock.send_multipart(parts, flags=zmq.NOBLOCK, copy=False)
                return attempt
            except zmq.Again:
                # No receiver, or all at their high-water mark: wait in bounded steps. A
                # multipart message is atomic, so Again always means nothing was queued.
                while not sock.poll(int(WAIT_SECONDS * 1000), zmq.POLLOUT):
                    check_stop()
                check_stop()

    def flush(self, check_stop: StopCheck) -> None:
        tracker = self._tracker
        while tracker is not None:
            try:
                tracker.wait(WAIT_SECONDS)
                return
            except zmq.NotDone:
                check_stop()

    def close(self, flushed: bool) -> None:
        if self._sock is not None and self._ctx is not None:
            self._sock.close(linger=FLUSH_LINGER_MS if flushed else 0)
            self._ctx.term()
        self._sock = self._ctx = None


class TcpServerSender(Sender):
    """Serves one TCP client: waits for it, answers its request line, writes the messages."""

    def __init__(self, bind: str, framing: TcpFraming) -> None:
        self.bind, self.framing = bind, framing
        self.host, self.port = host_port(bind, "tcp", "bind address")
        self._listener: Optional[socket.socket] = None
        self._client: Optional[socket.socket] = None

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host or "0.0.0.0", self.port))
        except OSError as exc:
            listener.close()
            raise SenderError(f"cannot bind {self.bind}: {exc.strerror or exc}") from exc
        listener.listen(1)
        listener.settimeout(WAIT_SECONDS)
        self._listener = listener
        self.endpoint = f"tcp://{self.host or '0.0.0.0'}:{listener.getsockname()[1]}"

    def _accept(self, check_stop: StopCheck) -> socket.socket:
        assert self._listener is not None
        while True:
            check_stop()
            try:
                client, peer = self._listener.accept()
            except TimeoutError:
                continue
            client.settimeout(WAIT_SECONDS)
            request = b""
            try:
                while not request.endswith(b"\n"):
                    check_stop()
                    try:
                        chunk = client.recv(4096)
                    except TimeoutError:
                        continue
                    if not chunk:
                        raise ConnectionError("closed before sending its request")
                    request += chunk
                self._write(client, self.framing.reply, check_stop)
            except OSError as exc:
                logger.warning("TCP client %s:%d left before the data started: %s", *peer[:2], exc)
                client.close()
                continue
            logger.info("TCP client %s:%d asked for %r", peer[0], peer[1], request.strip())
            return client

    @staticmethod
    def _write(client: socket.socket, data: bytes, check_stop: StopCheck) -> None:
        view = memoryview(data)
        while view:
            check_stop()
            try:
                written = client.send(view)
            except TimeoutError:
                continue
            view = view[written:]

    def send(self, frames: list[bytes], last: bool, check_stop: StopCheck) -> float:
        if self._client is None:
            self._client = self._accept(check_stop)
        attempt = time.monotonic()
        try:
            self._write(self._client, b"".join(frames), check_stop)
        except OSError as exc:
            raise SenderError(f"the TCP client went away ({exc})") from exc
        return attempt

    def flush(self, check_stop: StopCheck) -> None:
        if self._client is not None:
            try:
                self._client.shutdown(socket.SHUT_WR)  # the rest is delivered, then end of stream
            except OSError:
                pass

    def close(self, flushed: bool) -> None:
        for sock in (self._client, self._listener):
            if sock is not None:
                sock.close()
        self._client = self._listener = None


class HttpPostSender(Sender):
    """Posts each message to an HTTP ingester, as the protocol's poster would."""

    def __init__(self, target: str, framing: HttpFraming) -> None:
        self.target, self.framing = target, framing
        self.host, self.port = host_port(target, "http", "target")
        if not self.host:
            raise ValueError(f"target {target!r}: needs the ingester's host to post to")
        self._conn: Optional[http.client.HTTPConnection] = None

    def open(self) -> None:
        self.endpoint = f"http://{self.host}:{self.port}"

    def send(self, frames: list[bytes], last: bool, check_stop: StopCheck) -> float:
        if len(frames) != 1:
            raise SenderError(f"an HTTP message is one frame, this one has {len(frames)}")
        try:
            endpoint, body = self.framing.to_post(bytes(frames[0]))
        except ValueError as exc:
            raise SenderError(f"cannot post this message: {exc}") from exc
        path = self.framing.prefix + endpoint
        waiting_since: Optional[float] = None
        while True:
            check_stop()
            attempt = time.monotonic()
            try:
                status, detail = self._post(path, body)
            except (
                ConnectionRefusedError,
                ConnectionResetError,
                http.client.RemoteDisconnected,
                BrokenPipeError,
            ) as exc:
                status, detail = 0, str(exc)
            if 200 <= status < 300:
                return attempt
            if status in (0, 503):  # not listening yet, or asks to wait: hold back, like PUSH
                if waiting_since is None:
                    waiting_since = time.monotonic()
                    logger.info(
                        "waiting for %s to accept posts (%s)", self.endpoint, detail or status
                    )
                self._reset()
                deadline = time.monotonic() + WAIT_SECONDS
                while time.monotonic() < deadline:
                    check_stop()
                    time.sleep(0.02)
                continue
            raise SenderError(f"POST {self.endpoint}{path} answered {status}: {detail}")

    def _post(self, path: str, body: bytes) -> tuple[int, str]:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(
                self.host, self.port, timeout=HTTP_TIMEOUT_SECONDS
            )
        self._conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = self._conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        try:
            detail = json.loads(text).get("detail", text)
        except (ValueError, AttributeError):
            detail = text
        return response.status, str(detail)

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self, flushed: bool) -> None:
        self._reset()

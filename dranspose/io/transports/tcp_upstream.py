"""A TCP client upstream (PandA position capture on its data port): connect, ask, read, reconnect.

After connecting, the protocol's request line is sent and the server's one-line reply checked
(:class:`~dranspose.protocols.registry.TcpFraming`); the bytes that follow are cut into messages by the
protocol's splitter. Unlike ZMQ, a TCP client must reconnect itself: when the connection cannot
be made, is refused by the reply, or is lost, the upstream waits and tries again, starting at
0.1 s and doubling up to 5 s, and starts over with a fresh splitter (an unfinished message of the
lost connection is discarded and logged). The first failure of an outage is a warning, the
retries are debug lines, the recovery is logged again.

The connection is read all the time, except while the backlog is full: then TCP flow control
holds the sender back, as a PULL socket would.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Optional

from dranspose.io.transports.address import host_port
from dranspose.io.transports.base import DEFAULT_BACKLOG, Upstream
from dranspose.protocols.registry import ByteSplitter, Protocol

logger = logging.getLogger(__name__)

RETRY_MIN_SECONDS = 0.1
RETRY_MAX_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 5.0
REPLY_TIMEOUT_SECONDS = 5.0
_READ_SIZE = 1 << 16


class TcpUpstream(Upstream):
    transport = "tcp"

    def __init__(
        self,
        protocol: Protocol,
        url: str,
        *,
        name: str,
        backlog: int = DEFAULT_BACKLOG,
        regroup: bool = True,
        retry_min: float = RETRY_MIN_SECONDS,
        retry_max: float = RETRY_MAX_SECONDS,
    ) -> None:
        if protocol.tcp is None:
            raise ValueError(f"protocol {protocol.name!r} is not read over TCP")
        super().__init__(protocol, url, name=name, backlog=backlog, regroup=regroup)
        self.framing = protocol.tcp
        self.host, self.port = host_port(url, "tcp", "upstream")
        if not self.host:
            raise ValueError(f"upstream {url!r}: a TCP upstream needs the host to connect to")
        self.retry_min, self.retry_max = retry_min, retry_max
        self._task: Optional[asyncio.Task] = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        delay = self.retry_min
        failures = 0
        while True:
            connection = await self._connect(failures)
            if connection is None:
                failures += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            reader, writer = connection
            again = " again" if self.state.connects else ""
            after = f" after {failures} failed attempts" if failures else ""
            self._connected(f"connected{again} to TCP upstream {self.url}{after}")
            failures, delay = 0, self.retry_min
            splitter = self.framing.make_splitter()
            try:
                reason = await self._read(reader, splitter)
            except (OSError, asyncio.IncompleteReadError) as exc:
                reason = f"connection to {self.url} lost ({exc or type(exc).__name__})"
            finally:
                writer.close()
            unfinished = len(splitter.rest)
            if unfinished:
                reason += f"; {unfinished} bytes of an unfinished message discarded"
            self._disconnected(f"{reason}; reconnecting")
            await asyncio.sleep(delay)

    async def _connect(
        self, failures: int
    ) -> Optional[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        """Connect and do the request/reply exchange; ``None`` (logged) when it fails."""
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), CONNECT_TIMEOUT_SECONDS
            )
            writer.write(self.framing.request)
            await writer.drain()
            reply = await asyncio.wait_for(reader.readline(), REPLY_TIMEOUT_SECONDS)
            if not reply.endswith(b"\n"):
                raise ConnectionError("the upstream closed the connection before replying")
            self.framing.check_reply(reply)
            return reader, writer
        except asyncio.TimeoutError:
            problem = "timed out"
        except (OSError, ValueError) as exc:  # ValueError: ParseError of a refused request
            problem = str(exc) or type(exc).__name__
        if writer is not None:
            writer.close()
        self.state.last_error = f"cannot connect to {self.url}: {problem}"
        if failures == 0:
            logger.warning(
                "stream %s: %s; retrying with back-off up to every %g s",
                self.name,
                self.state.last_error,
                self.retry_max,
            )
        else:
            logger.debug(
                "stream %s: %s (attempt %d)", self.name, self.state.last_error, failures + 1
            )
        return None

    async def _read(self, reader: asyncio.StreamReader, splitter: ByteSplitter) -> str:
        """Read until the upstream closes; returns why the connection ended."""
        while True:
            while self.full:
                await self._room.wait()
            data = await reader.read(_READ_SIZE)
            if not data:
                return f"TCP upstream {self.url} closed the connection"
            for message in splitter.feed(data):
                self._receive([message])

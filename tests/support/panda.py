"""A PandA position-capture data port (TCP) for tests, and a short session it sends."""

from __future__ import annotations

import asyncio

# A session of two fields, six samples: the header block, the sample lines, the completion line.
HEADER = (
    b"arm_time: 2024-03-05T10:12:03.257841574Z\nmissed: 0\nprocess: Scaled\n"
    b"format: ASCII\nfields:\n INENC1.VAL double Mean scale: 0.0005 offset: -12.5 units: mm\n"
    b" COUNTER1.OUT uint32 Value\n\n"
)
LINES = [b" %g %d\n" % (0.5 * i, i) for i in range(6)]
END = b"END 6 Ok\n"
SESSION = HEADER + b"".join(LINES) + END


class PandaDataPort:
    """A TCP server speaking the PandA data port: reads the options line, answers, then sends
    what the test asks for, on each connection in turn."""

    def __init__(self, port: int, reply: bytes = b"OK\n") -> None:
        self.port = port
        self.reply = reply
        self.requests: list[bytes] = []
        self.connections: asyncio.Queue = asyncio.Queue()
        self.writers: list[asyncio.StreamWriter] = []
        self.server = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader, writer) -> None:
        self.writers.append(writer)
        self.requests.append(await reader.readline())
        writer.write(self.reply)
        await writer.drain()
        await self.connections.put(writer)

    async def stop(self) -> None:
        """Stop listening and close every connection (Python >= 3.12 waits for them)."""
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()

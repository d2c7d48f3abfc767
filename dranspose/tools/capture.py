"""``dranspose capture``: record what an upstream sends, as an ingester would read it, to a raw
capture file.

The upstream is opened exactly as an ingester opens it (:func:`dranspose.io.transports.open_upstream`),
so every transport works and reconnects the same way, but messages are written as they came,
not regrouped by the protocol's framer: one item per ZMQ message, per message cut from a TCP
stream, per accepted HTTP post. A SUB upstream's counters say what was lost while recording.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any, Optional

import zmq.asyncio

from dranspose.io.capture import PathLike, RawCaptureWriter
from dranspose.io.transports import open_upstream
from dranspose.protocols.registry import Protocol

_BACKLOG = 10_000
"""Messages held between reading and writing; writing is fast, so this only absorbs bursts."""
_PROGRESS_EVERY = 100


def capture_upstream(
    protocol: Protocol,
    url: str,
    output: PathLike,
    count: Optional[int] = None,
    sub: Optional[bool] = None,
    progress: bool = False,
) -> str:
    """Record until ``count`` messages were written, or SIGINT/SIGTERM; returns a summary line.

    Raises ``ValueError`` for an address the protocol's transport cannot use and ``OSError``
    when an HTTP address cannot be listened on.
    """
    if count is not None and count < 1:
        raise ValueError(f"--count must be at least 1, got {count}")
    return asyncio.run(_capture(protocol, url, output, count, sub, progress))


async def _capture(
    protocol: Protocol,
    url: str,
    output: PathLike,
    count: Optional[int],
    sub: Optional[bool],
    progress: bool,
) -> str:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ctx = zmq.asyncio.Context()
    written, size, started = 0, 0, time.monotonic()
    upstream = None
    closed = False
    try:
        upstream = open_upstream(
            protocol, url, name="capture", ctx=ctx, sub=sub, backlog=_BACKLOG, regroup=False
        )
        await upstream.start()
        with RawCaptureWriter(output) as out:

            def room() -> bool:
                return count is None or written < count

            def record(frames: list[Any]) -> None:
                nonlocal written, size
                out.write(frames)
                written += 1
                size += sum(len(f) for f in frames)

            while not stop.is_set() and room():
                item = upstream.pop()
                if item is None:
                    out.flush()
                    await upstream.wait(0.2)
                    continue
                record(item[1])
                if progress and written % _PROGRESS_EVERY == 0:
                    print(
                        f"\rcaptured {written} messages, {size / 1e6:.1f} MB",
                        end="",
                        file=sys.stderr,
                    )
            # stopped: stop accepting, then write what the upstream had already taken in (an
            # HTTP post was answered 200, a TCP sender saw its bytes go): nothing taken is lost
            await upstream.close()
            closed = True
            while room() and (item := upstream.pop()) is not None:
                record(item[1])
    finally:
        if upstream is not None and not closed:
            await upstream.close()
        ctx.term()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    line = (
        f"{written} messages, {size / 1e6:.2f} MB in {time.monotonic() - started:.1f} s -> {output}"
    )
    state = upstream.state if upstream is not None else None
    if state is not None and state.dropped:
        line += (
            f"; {state.dropped} messages lost ({state.missing} missing from the "
            f"protocol's counter, {state.overflow} dropped while writing fell behind)"
        )
    return line

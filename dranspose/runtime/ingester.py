"""The ingester: reads one upstream stream and forwards each message to the workers the map names.

The k-th upstream message of a scan belongs to the k-th event in which the trigger map gives this
stream a frame (``null`` entries are skipped, ``[]`` entries are read and dropped). Assignments
arrive in event order from the controller; the ingester waits for an event's assignment before
sending, which with a PULL upstream is backpressure, not loss. Frames are forwarded as received
(``zmq.Frame``, no copy); all frames of one upstream multipart message stay together.

This module is the component: its upstream, data-plane outboxes, dump and what it reports, which
outlive a scan. One scan's work is :class:`~dranspose.runtime.ingester_session.IngesterSession`.

How the upstream is read (ZMQ PULL or SUB, TCP client, HTTP server), what is lost when nobody
reads and how connections come back is the transport's business (:mod:`dranspose.io.transports`);
its counters are reported in this component's registry entry (``info.upstream``).
"""

from __future__ import annotations

import logging
from typing import Optional

import zmq
import zmq.asyncio

from dranspose.core.backpressure import WaitClock
from dranspose.core.coordination import ComponentInfo, ComponentKind, ScanInfo
from dranspose.core.protocol import DUMP_PREFIX, BuildGitMeta, StreamName, as_uuid4
from dranspose.core.stats import QueueStats
from dranspose.io.capture import CaptureWriter
from dranspose.io.dataplane import Outboxes
from dranspose.io.store import Store
from dranspose.io.transports import DEFAULT_BACKLOG, open_upstream
from dranspose.io.transports.base import Queued
from dranspose.protocols.registry import get_protocol
from dranspose.runtime.component import CONTROLLER_GRACE_SECONDS, Component
from dranspose.runtime.ingester_session import IngesterSession
from dranspose.runtime.session import ScanWatcher

logger = logging.getLogger(__name__)


class Ingester(Component):
    """Serves one stream: joins every scan that reads it, one :class:`IngesterSession` each."""

    def __init__(
        self,
        store: Store,
        stream: str,
        upstream: str,
        name: Optional[str] = None,
        protocol: str = "stins",
        dump: Optional[str] = None,
        sock_type: Optional[int] = None,
        backlog: int = DEFAULT_BACKLOG,
        build_meta: Optional[BuildGitMeta] = None,
        controller_grace: float = CONTROLLER_GRACE_SECONDS,
    ) -> None:
        super().__init__(
            store,
            ComponentInfo(
                kind=ComponentKind.ingester,
                name=name or f"{stream}-ingester",
                streams=[StreamName(stream)],
            ),
            build_meta,
            controller_grace,
        )
        self.stream = StreamName(stream)
        self.upstream_url = upstream
        self.protocol = get_protocol(protocol)
        self.typ = self.protocol.typ
        self.dump_path = dump
        self.ctx = zmq.asyncio.Context(io_threads=2)  # receive and send large frames in parallel
        sub = None if sock_type is None else sock_type == zmq.SUB
        try:
            self.upstream = open_upstream(
                self.protocol, upstream, name=stream, ctx=self.ctx, sub=sub, backlog=backlog
            )
        except BaseException:
            self.ctx.term()
            raise
        self.upstream_state = self.upstream.state
        self.info.upstream = self.upstream_state
        self.outboxes = Outboxes(self.ctx)
        self.carried: Optional[Queued] = None
        """A message read during a scan that ended before it could be routed: the next scan's
        (it belongs to no scan until a series starts, so sessions pass it on, not the watcher)."""
        self.waiting = WaitClock()
        """Time spent holding a message no worker has asked for yet (backpressure)."""
        self.stats.queues = self.queue_stats

    def queue_stats(self) -> QueueStats:
        return QueueStats(
            backlog_messages=len(self.upstream.backlog),
            backlog_bytes=self.upstream.backlog_bytes,
            blocked_seconds=self.waiting.seconds + self.outboxes.blocked_seconds,
        )

    @property
    def forwarded(self) -> int:
        return self.upstream_state.forwarded

    @property
    def discarded(self) -> int:
        return self.upstream_state.discarded

    @property
    def skipped(self) -> int:
        return self.upstream_state.skipped

    def joins(self, scan: ScanInfo) -> bool:
        """A scan that reads this ingester's stream and began with this process."""
        return not scan.stopped and self.stream in scan.streams and scan.takes_part(self.info)

    async def main(self) -> None:
        dump = CaptureWriter(self.dump_path) if self.dump_path else None
        scans: ScanWatcher[None] = ScanWatcher(self, self.joins)
        try:
            await self.upstream.start()
            await scans.join_each(lambda scan: self._take_part(scan, dump))
        finally:
            if dump is not None:
                dump.close()
            await self.upstream.close()
            self.outboxes.close()
            self.ctx.term()

    async def _take_part(self, scan: ScanInfo, dump: Optional[CaptureWriter]) -> None:
        """One scan; without ``--dump``, dumped to a file of its own when the parameter
        ``dump_prefix`` is set, as the original dranspose's ingesters do."""
        own = await self._prefix_dump(scan) if dump is None else None
        try:
            await IngesterSession(self, scan, dump or own).take_part()
        finally:
            if own is not None:
                own.close()

    async def _prefix_dump(self, scan: ScanInfo) -> Optional[CaptureWriter]:
        """``<dump_prefix><ingester>-<scan id>.cbors`` (the original's name), or ``None``."""
        _, raw = await self.store.get_parameters()
        prefix = raw.get(DUMP_PREFIX, b"").decode("utf8", "backslashreplace")
        if not prefix:
            return None
        scan_uuid = as_uuid4(scan.scan_id)
        path = f"{prefix}{self.info.name}-{scan_uuid or scan.scan_id}.cbors"
        try:
            return CaptureWriter(path)
        except OSError as exc:
            logger.error("ingester %s: cannot write the dump %s: %s", self.info.name, path, exc)
            return None

    async def worker_urls(self) -> dict[str, str]:
        return {
            c.name: c.url
            for c in await self.store.components()
            if c.kind == ComponentKind.worker and c.url
        }

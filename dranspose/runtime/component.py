"""What every long-running component shares: registration with heartbeat, and live parameters."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import Any, Callable, Optional

from dranspose import __version__
from dranspose.core.coordination import ComponentInfo, ScanInfo
from dranspose.core.parameters import ParameterDescription, ParameterSet, ParameterType, describe
from dranspose.core.protocol import BuildGitMeta, ParameterName, as_uuid4
from dranspose.core.stats import ComponentStats, StatsRecorder
from dranspose.io.store import UNAVAILABLE as REDIS_UNAVAILABLE
from dranspose.io.store import Store
from dranspose.runtime.logs import LogShipper, bind_component, unbind_component

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 0.5
REGISTRY_TTL_SECONDS = 3.0
"""A component whose entry was not renewed for this long is considered dead."""
STATS_TTL_SECONDS = 30.0
"""A dead component's counters stay visible in /metrics this long."""
SCAN_POLL_SECONDS = 0.1
SCAN_WAIT_SECONDS = 0.25
"""Longest a component idle between scans waits for a change of the scan record (it is woken at
once by the controller's write; this bounds how long a stop request waits)."""
PARAMETER_POLL_SECONDS = 0.2
CONTROLLER_GRACE_SECONDS = 60.0
"""How long an ingester, worker or reducer keeps its part of a running scan while no controller
holds the lock: long enough for a Kubernetes pod to be rescheduled and a successor to take the
scan over (``--controller-grace``). Past it the component aborts its part with the reason."""


class Component:
    """Registers ``info`` in Redis and keeps it alive while ``run`` executes.

    ``build_meta`` is the payload's provenance the registry entry (and the payload's
    ``state.mapreduce_version``) shows; the command line reads it from ``$BUILD_META_FILE``.
    """

    def __init__(
        self,
        store: Store,
        info: ComponentInfo,
        build_meta: Optional[BuildGitMeta] = None,
        controller_grace: Optional[float] = None,
    ) -> None:
        self.store = store
        self.info = info
        self.info.dranspose_version = __version__
        self.info.pid = os.getpid()
        self.info.instance = uuid.uuid4().hex
        self.info.mapreduce_version = build_meta
        self._stopping = asyncio.Event()
        self.stats = StatsRecorder(info.kind, info.name)
        """Counters the heartbeat publishes for the controller's /metrics."""
        self.log_shipper = LogShipper(store, info.name)
        self._rate_sample = (time.monotonic(), 0)
        """(when, payload calls) at the last :meth:`payload_state_fields`: its event rate's base."""
        self.controller_grace = controller_grace
        """Seconds a scan's part is kept without a controller (None: not watched; the
        controller itself)."""
        self.controller_holder: Optional[str] = None
        """Who held the controller lock at the last heartbeat that could read it (None: nobody)."""
        self._controller_seen = time.monotonic()
        """When the lock was last seen held (or this process started)."""
        self._controller_lost = False
        """The heartbeat saw the lock's holder go and said so (it says so again when one is back)."""
        self.controller_since = 0.0
        """When the heartbeat first saw the lock's current holder (monotonic; 0: the first one)."""

    def payload_state_fields(self) -> dict[str, Any]:
        """The original's ``DistributedState`` fields of the payload's ``state``, as now.

        ``service_uuid`` is this process's instance, ``mapping_uuid`` its scan's id,
        ``processed_events`` its payload calls since it started (worker: events, reducer:
        results) and ``event_rate`` their rate since the previous call (the previous scan).
        """
        snapshot = self.stats_snapshot()
        count = sum(snapshot.processing.counts) if snapshot.processing is not None else 0
        now = time.monotonic()
        then, before = self._rate_sample
        self._rate_sample = (now, count)
        fields: dict[str, Any] = {
            "mapping_uuid": as_uuid4(self.info.scan_id),
            "parameters_hash": self.parameters_hash(),
            "processed_events": count,
            "event_rate": (count - before) / (now - then) if now > then else 0.0,
        }
        service = as_uuid4(self.info.instance)
        if service is not None:
            fields["service_uuid"] = service
        return fields

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def until_stopped(self) -> None:
        """Return once :meth:`stop` was called (a task waits on it beside its own work)."""
        await self._stopping.wait()

    def stats_snapshot(self) -> ComponentStats:
        return self.stats.snapshot(self.info.scan_id, self.log_shipper.dropped)

    def parameters_hash(self) -> Optional[str]:
        """The hash of the parameters this component computes with (None: it computes none)."""
        return None

    async def _register(self) -> None:
        self.info.last_seen = time.time()  # what the dashboard shows as "last seen"
        self.info.parameters_hash = self.parameters_hash()
        await self.store.register(self.info, REGISTRY_TTL_SECONDS)

    async def _heartbeat(self) -> None:
        server: Optional[str] = None
        failing = False
        while not self._stopping.is_set():
            try:
                await self._register()
                await self.store.set_stats(self.stats_snapshot(), STATS_TTL_SECONDS)
                run_id = await self.store.server_run_id()
                if server is not None and run_id != server:
                    logger.warning(
                        "%s %s: Redis restarted; restoring what it forgot",
                        self.info.kind.value,
                        self.info.name,
                    )
                    await self.redis_restarted()
                server = run_id
                await self._watch_controller()
                if failing:
                    logger.info(
                        "%s %s: Redis reachable again", self.info.kind.value, self.info.name
                    )
                failing = False
            except Exception as exc:  # Redis away: keep trying, the entry simply expires
                if not failing:  # once per outage, not twice a second
                    logger.warning(
                        "%s %s: heartbeat failed: %s", self.info.kind.value, self.info.name, exc
                    )
                failing = True
            try:
                await asyncio.wait_for(self._stopping.wait(), HEARTBEAT_SECONDS)
            except asyncio.TimeoutError:
                pass

    async def _watch_controller(self) -> None:
        """Read who holds the controller lock (one GET per heartbeat) and log the changes: a
        controller that died leaves its scan running, and whoever holds the lock next may take
        it over, so the components keep their part meanwhile (:meth:`controller_missing`)."""
        if self.controller_grace is None:
            return
        holder = await self.store.controller_lock_holder()
        now = time.monotonic()
        kind, name = self.info.kind.value, self.info.name
        if holder is not None:
            if self._controller_lost:
                logger.warning(
                    "%s %s: controller %s holds the lock after %.1f s without a controller",
                    kind,
                    name,
                    holder,
                    now - self._controller_seen,
                )
                self.controller_since = now  # a successor, or the same one back
            elif self.controller_holder not in (None, holder):
                logger.info("%s %s: controller %s took over", kind, name, holder)
                self.controller_since = now
            self._controller_lost = False
            self._controller_seen = now
        elif self.controller_holder is not None:
            # said once per absence; a component started before any controller says nothing
            self._controller_lost = True
            logger.warning(
                "%s %s: no controller holds the lock (last held by %s); a scan in progress "
                "is kept for up to %g s for a successor to take it over",
                kind,
                name,
                self.controller_holder,
                self.controller_grace,
            )
        self.controller_holder = holder

    @property
    def controller_lost(self) -> bool:
        """Whether the heartbeat saw the controller lock's holder go and nobody holds it since.

        Meanwhile a worker does not ask again for work it asked for (the successor answers the
        open request) and the reducer waits for the successor's final account. A component that
        never saw a controller (tests that write scan records themselves) is not affected.
        """
        return self._controller_lost

    async def controller_missing(self) -> Optional[str]:
        """Why this component must abort its part of the scan for want of a controller: no
        controller held the lock for ``controller_grace`` seconds. None while one may still come.

        The grace counts from the heartbeat's last sight of a holder; the lock of a controller
        that died expires 5 s after its last renewal, so the components notice that late. Cheap
        until the grace is over (no I/O); then the lock is read again, so a heartbeat that is
        behind never aborts on an old reading. While Redis is unreachable nothing can be told:
        an outage is retried, never fatal. A component that never saw a controller (tests that
        write scan records themselves) never aborts for want of one.
        """
        grace = self.controller_grace
        if grace is None or not self._controller_lost:
            return None
        if time.monotonic() - self._controller_seen < grace:
            return None
        try:
            holder = await self.store.controller_lock_holder()
        except REDIS_UNAVAILABLE:
            return None
        if holder is not None:
            self.controller_holder, self._controller_seen = holder, time.monotonic()
            self._controller_lost = False
            return None
        return f"no controller for {grace:g} s"

    async def serve(self) -> None:
        # records of this task and the tasks it starts belong to this component
        token = bind_component(self.info.name)
        self.log_shipper.install()
        try:
            await self.store.wait_until_reachable()
            await self._register()
            beat = asyncio.create_task(self._heartbeat())
            try:
                await self.main()
            finally:
                self._stopping.set()
                beat.cancel()
                try:
                    await self.store.set_stats(self.stats_snapshot(), STATS_TTL_SECONDS)
                    await self.store.unregister(self.info)
                except Exception:
                    pass
        finally:
            await self.log_shipper.uninstall()
            unbind_component(token)

    async def main(self) -> None:
        raise NotImplementedError

    async def redis_restarted(self) -> None:
        """Put back what this component keeps in Redis besides its registry entry."""

    async def read_scan(self) -> Optional[ScanInfo]:
        """The current scan, or None while Redis is unreachable (the caller polls again)."""
        try:
            return await self.store.get_scan()
        except REDIS_UNAVAILABLE:
            await self.sleep_or_stop(0.5)  # the heartbeat logs the outage
            return None

    async def wait_scan_change(self, mark: str) -> str:
        """Wait (at most SCAN_WAIT_SECONDS) for the controller to write the scan record after
        ``mark``; returns the mark to pass next time (the same one while Redis is away: the
        store's stream reads pause and retry then)."""
        return await self.store.scan_changed(mark, int(SCAN_WAIT_SECONDS * 1000))

    async def sleep_or_stop(self, seconds: float) -> bool:
        """Sleep; returns True if the component is stopping."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
            return True
        except asyncio.TimeoutError:
            return False


class LiveParameters:
    """The current :class:`ParameterSet`, refreshed when the controller bumps the version.

    Readers take ``current`` once per event, so one event never sees a mix of old and new values.
    """

    def __init__(
        self,
        store: Store,
        descriptions: dict[ParameterName, ParameterType],
        on_change: Optional[Callable[[ParameterSet], None]] = None,
    ) -> None:
        self.store = store
        self.descriptions = descriptions
        self.version = -1
        self.current = ParameterSet.from_raw(descriptions, {})
        self.on_change = on_change

    @classmethod
    def for_classes(cls, store: Store, *classes: Any) -> LiveParameters:
        return cls(store, describe(classes))

    async def publish_descriptions(self, component: str) -> None:
        await self.store.set_descriptions(
            component, [d.model_dump(mode="json") for d in self.descriptions.values()]
        )

    async def adopt_published_descriptions(self) -> None:
        """Also know the parameters other components declared (a reducer reads the workers')."""
        for items in (await self.store.get_descriptions()).values():
            for item in items:
                name = ParameterName(item["name"])
                if name not in self.descriptions:
                    self.descriptions[name] = ParameterDescription.from_published(item)
        self.version = -1
        await self.refresh()

    async def refresh(self) -> bool:
        """Reload if the version changed; returns True when the values changed."""
        version = await self.store.parameters_version()
        if version == self.version:
            return False
        version, raw = await self.store.get_parameters()
        try:
            self.current = ParameterSet.from_raw(self.descriptions, raw)
        except ValueError as exc:
            logger.error(
                "parameters version %d rejected, keeping the previous set: %s", version, exc
            )
        self.version = version
        if self.on_change is not None:
            self.on_change(self.current)
        return True

    async def watch(self, stopping: Callable[[], bool]) -> None:
        while not stopping():
            try:
                await self.refresh()
            except Exception as exc:
                logger.warning("parameter refresh failed: %s", exc)
            await asyncio.sleep(PARAMETER_POLL_SECONDS)

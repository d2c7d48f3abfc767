"""The one place that talks to Redis.

Every key lives under one prefix so several pipelines can share a Redis. Coordination is batched:
assignments for many events travel in one stream entry, workers report many completions at once,
so Redis round trips scale with batches, not with events.

Keys (``{p}`` is the prefix):

- ``{p}:controller_lock``            owner id of the active controller (expires unless renewed)
- ``{p}:component:{kind}:{name}``    ComponentInfo JSON, expires unless the heartbeat renews it
- ``{p}:scan``                       ScanInfo JSON of the current scan
- ``{p}:scan_changes``               stream with an entry per write of the scan record (wake-ups)
- ``{p}:assigned:{scan}``            stream of assignment batches (runs of AssignedEvents)
- ``{p}:reports:{scan}``             stream of WorkerReports (and the reducer's done mark, which
  wakes the controller's read); both scan streams expire an hour after the scan is over
- ``{p}:confirmed:{scan}``           events below this number are accounted for (re-delivery)
- ``{p}:account:{scan}``             AccountRecord JSON, written at the start: what a successor resumes
- ``{p}:progress``                   Progress JSON, written by the controller
- ``{p}:reducer_done:{scan}``        set by the reducer once ``finish`` has run
- ``{p}:joined:{scan}``              set of the workers that joined the scan (while it ran)
- ``{p}:parameters``                 hash name -> raw bytes; ``{p}:parameters_version`` counter
- ``{p}:parameter_uuids``            hash name -> the id of its value (new on every set)
- ``{p}:descriptions``               hash component -> JSON list of parameter declarations
- ``{p}:stats:{kind}:{name}``        ComponentStats JSON (counters for /metrics), expires
- ``{p}:logs``                       capped stream of log records (LogEntry JSON) of all components
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, AsyncIterator, Iterable, Mapping, Optional, Sequence, Union

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from dranspose.core.coordination import (
    AssignedEvent,
    AssignedRun,
    ComponentInfo,
    Progress,
    ScanInfo,
    WorkerReport,
    runs_of,
)
from dranspose.core.logs import LogEntry
from dranspose.core.protocol import ScanId
from dranspose.core.stats import ComponentStats

logger = logging.getLogger(__name__)

UNAVAILABLE = (aioredis.ConnectionError, aioredis.TimeoutError, OSError)
"""What a Store call raises while Redis is down or restarting: callers retry with back-off."""

STREAM_MAXLEN = 100_000
SCAN_STREAMS_TTL = 3600
"""Seconds a scan's streams stay after the scan is over (:meth:`Store.expire_scan_streams`)."""
LOG_STREAM_MAXLEN = 10_000
"""Log records kept for /api/v1/logs (approximately: trimming happens in whole nodes)."""
_XRANGE_JSON = "return cjson.encode(redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2]))"


class Key:
    """The first part of every Redis key (after the prefix): the names live here alone, the
    module docstring says what each holds, :meth:`Store.key` joins the parts."""

    ACCOUNT = "account"
    ASSIGNED = "assigned"
    COMPONENT = "component"
    CONFIRMED = "confirmed"
    CONTROLLER_LOCK = "controller_lock"
    DESCRIPTIONS = "descriptions"
    JOINED = "joined"
    LOGS = "logs"
    PARAMETER_UUIDS = "parameter_uuids"
    PARAMETERS = "parameters"
    PARAMETERS_VERSION = "parameters_version"
    PROGRESS = "progress"
    REPORTS = "reports"
    REDUCER_DONE = "reducer_done"
    SCAN = "scan"
    SCAN_CHANGES = "scan_changes"
    STATS = "stats"


def _text(value: Union[bytes, str]) -> str:
    """A Redis reply as text: the client is not asked to decode, but its types allow either."""
    return value.decode() if isinstance(value, bytes) else value


class Store:
    """Typed access to the coordination data of one pipeline."""

    def __init__(self, url: str, prefix: str = "dranspose") -> None:
        self.url = url
        self.prefix = prefix
        self.redis: aioredis.Redis = aioredis.Redis.from_url(url, socket_connect_timeout=2)

    async def close(self) -> None:
        await self.redis.aclose()

    async def wait_until_reachable(self, timeout: float = 30.0) -> None:
        """Ping with back-off; raises ConnectionError naming the URL after ``timeout``."""
        delay, waited = 0.05, 0.0
        while True:
            try:
                await self.redis.ping()
                return
            except (aioredis.ConnectionError, OSError) as exc:
                if waited >= timeout:
                    raise ConnectionError(f"Redis at {self.url} unreachable: {exc}") from exc
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 1.0)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # -- controller lock ----------------------------------------------------------------------

    async def acquire_controller_lock(self, owner: str, ttl: float) -> Optional[str]:
        """Take the lock; returns ``None`` on success or the current holder's id."""
        key = self.key(Key.CONTROLLER_LOCK)
        if await self.redis.set(key, owner, nx=True, px=int(ttl * 1000)):
            return None
        holder = await self.redis.get(key)
        return _text(holder) if holder else "unknown"

    async def renew_controller_lock(self, owner: str, ttl: float) -> bool:
        """Extend the lock if we still hold it, or take it again if it vanished (atomically):
        that means Redis restarted empty; nobody else can have taken it without this owner's
        renewal failing first."""
        script = (
            "local holder = redis.call('get', KEYS[1]) "
            "if holder == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end "
            "if not holder then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
            "return 0"
        )
        return bool(
            await self.redis.eval(script, 1, self.key(Key.CONTROLLER_LOCK), owner, int(ttl * 1000))
        )

    async def controller_lock_holder(self) -> Optional[str]:
        """Owner id of the controller lock, None when nobody holds it."""
        holder = await self.redis.get(self.key(Key.CONTROLLER_LOCK))
        return _text(holder) if holder else None

    async def release_controller_lock(self, owner: str) -> None:
        script = (
            "if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('del', KEYS[1]) else return 0 end"
        )
        await self.redis.eval(script, 1, self.key(Key.CONTROLLER_LOCK), owner)

    # -- registry -----------------------------------------------------------------------------

    async def register(self, info: ComponentInfo, ttl: float) -> None:
        await self.redis.set(
            self.key(Key.COMPONENT, info.kind.value, info.name),
            info.model_dump_json(),
            px=int(ttl * 1000),
        )

    async def unregister(self, info: ComponentInfo) -> None:
        await self.redis.delete(self.key(Key.COMPONENT, info.kind.value, info.name))

    async def components(self) -> list[ComponentInfo]:
        keys = [
            k async for k in self.redis.scan_iter(match=self.key(Key.COMPONENT, "*"), count=500)
        ]
        if not keys:
            return []
        values = await self.redis.mget(keys)
        return sorted(
            (ComponentInfo.model_validate_json(v) for v in values if v is not None),
            key=lambda c: (c.kind.value, c.name),
        )

    # -- scans --------------------------------------------------------------------------------

    async def set_scan(self, scan: ScanInfo) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.key(Key.SCAN), scan.model_dump_json())
            # components waiting for a scan block on this stream instead of polling the record
            pipe.xadd(
                self.key(Key.SCAN_CHANGES), {"scan": scan.scan_id}, maxlen=100, approximate=True
            )
            await pipe.execute()

    async def scan_changed(self, last_id: str, block_ms: int) -> str:
        """Wait up to ``block_ms`` for the scan record to change after ``last_id`` (an id this
        returned before, or ``"0"``); returns the id to wait after next time."""
        last_id, _ = await self._entries_after(self.key(Key.SCAN_CHANGES), last_id, block_ms)
        return last_id

    async def get_scan(self) -> Optional[ScanInfo]:
        raw = await self.redis.get(self.key(Key.SCAN))
        return ScanInfo.model_validate_json(raw) if raw else None

    async def _xread(self, key: str, last_id: str, block_ms: int) -> Any:
        """XREAD that survives a Redis restart: callers loop, so an outage reads as "nothing new"."""
        try:
            return await self.redis.xread({key: last_id}, block=block_ms)
        except UNAVAILABLE as exc:
            logger.warning("Redis at %s unavailable (%s); retrying", self.url, exc)
            await asyncio.sleep(0.5)
            return None

    async def _entries_after(
        self, key: str, last_id: str, block_ms: int
    ) -> tuple[str, list[Mapping[Any, Any]]]:
        """The fields of the entries of stream ``key`` after ``last_id``, and the id of the last
        one (``last_id`` itself when none came, or Redis is away)."""
        fields: list[Mapping[Any, Any]] = []
        for _stream, entries in await self._xread(key, last_id, block_ms) or []:
            for entry_id, entry in entries:
                last_id = _text(entry_id)
                fields.append(entry)
        return last_id, fields

    async def publish_assignments(
        self,
        scan_id: ScanId,
        batch: Sequence[AssignedEvent],
        redelivery: bool = False,
        answered: Iterable[str] = (),
    ) -> None:
        """One stream entry for the whole batch, as runs ``[[first, length, {stream: [worker]}]]``
        (:class:`AssignedRun`), naming the workers whose requests it answers. On the hot path
        (everyone reads every batch): plain JSON lists for the C json module, an item per run."""
        await self.publish_runs(scan_id, runs_of(batch), redelivery, answered)

    async def publish_runs(
        self,
        scan_id: ScanId,
        runs: Sequence[AssignedRun],
        redelivery: bool = False,
        answered: Iterable[str] = (),
    ) -> None:
        """:meth:`publish_assignments` of events already in runs (``Assigner.request_runs``)."""
        if runs:
            items = [[r.first, r.length, r.streams] for r in runs]
            fields: dict[FieldT, EncodableT] = {"runs": json.dumps(items, separators=(",", ":"))}
            if redelivery:
                fields["redelivery"] = "1"
            names = sorted(answered)
            if names:
                fields["answered"] = json.dumps(names)
            await self.redis.xadd(
                self.key(Key.ASSIGNED, scan_id), fields, maxlen=STREAM_MAXLEN, approximate=True
            )

    async def read_assignments(
        self, scan_id: ScanId, last_id: str = "0", block_ms: int = 200
    ) -> tuple[str, list[AssignedRun], set[str]]:
        """Assignment batches after ``last_id``; returns the new last id, their runs and the
        workers whose requests they answered (a worker waits for its own answer before it asks
        again: the first event goes to every worker, and is no answer)."""
        last_id, entries = await self._entries_after(
            self.key(Key.ASSIGNED, scan_id), last_id, block_ms
        )
        runs = [run for fields in entries for run in self._runs(fields)]
        answered = {
            name
            for fields in entries
            if b"answered" in fields
            for name in json.loads(fields[b"answered"])
        }
        return last_id, runs, answered

    @staticmethod
    def _runs(fields: Mapping[Union[bytes, str], Union[bytes, str]]) -> list[AssignedRun]:
        again = b"redelivery" in fields
        return [
            AssignedRun(first, length, streams, again)
            for first, length, streams in json.loads(fields[b"runs"])
        ]

    async def _chunks(self, key: str, count: int) -> AsyncIterator[list[tuple[str, Any]]]:
        """The stream's entries, ``count`` at a time, each chunk one JSON text (parsed in C)."""
        start = "-"
        while entries := json.loads(await self.redis.eval(_XRANGE_JSON, 1, key, start, count)):
            chunk = [(i, {k.encode(): v for k, v in zip(f[::2], f[1::2])}) for i, f in entries]
            yield chunk
            start = f"({chunk[-1][0]}"

    async def assignment_chunks(
        self, scan_id: ScanId, count: int = 500
    ) -> AsyncIterator[list[tuple[str, list[AssignedRun], list[str]]]]:
        """Every assignment batch of a scan as (entry id, runs, workers answered): a resume."""
        async for chunk in self._chunks(self.key(Key.ASSIGNED, scan_id), count):
            yield [(i, self._runs(f), json.loads(f.get(b"answered", b"[]"))) for i, f in chunk]

    async def report_chunks(
        self, scan_id: ScanId, count: int = 500
    ) -> AsyncIterator[list[tuple[str, Optional[WorkerReport]]]]:
        """Every entry of the report stream (None: the reducer's done mark), in order."""
        async for chunk in self._chunks(self.key(Key.REPORTS, scan_id), count):
            yield [
                (i, WorkerReport.model_validate_json(f[b"report"]) if b"report" in f else None)
                for i, f in chunk
            ]

    async def trimmed_stream(self, scan_id: ScanId, cap: int = STREAM_MAXLEN) -> Optional[str]:
        """Why a scan stream may have lost entries to its cap (a resume needs them all)."""
        for kind in (Key.ASSIGNED, Key.REPORTS):
            key = self.key(kind, scan_id)
            info = await self.redis.xinfo_stream(key) if await self.redis.exists(key) else {}
            added, kept = info.get("entries-added"), int(info.get("length", 0))  # added: Redis 7
            if (int(added) > kept) if added is not None else kept >= cap:
                return f"its {kind} stream reached its cap ({kept} kept of {added or 'more'})"
        return None

    async def set_account_record(self, scan_id: ScanId, record: str) -> None:
        await self.redis.set(self.key(Key.ACCOUNT, scan_id), record, ex=24 * 3600)

    async def account_record(self, scan_id: ScanId) -> Optional[bytes]:
        raw = await self.redis.get(self.key(Key.ACCOUNT, scan_id))
        return raw.encode() if isinstance(raw, str) else raw

    async def set_confirmed(self, scan_id: ScanId, below: int) -> None:
        """Every event below ``below`` is accounted for: ingesters may forget their frames."""
        await self.redis.set(self.key(Key.CONFIRMED, scan_id), below, ex=24 * 3600)

    async def confirmed(self, scan_id: ScanId) -> int:
        raw = await self.redis.get(self.key(Key.CONFIRMED, scan_id))
        return int(raw) if raw else 0

    async def server_run_id(self) -> str:
        """Changes whenever the Redis server restarts (and forgets everything, without persistence)."""
        return str((await self.redis.info("server")).get("run_id", ""))

    async def report(self, scan_id: ScanId, report: WorkerReport) -> None:
        fields: dict[FieldT, EncodableT] = {"report": report.model_dump_json()}
        key = self.key(Key.REPORTS, scan_id)
        await self.redis.xadd(key, fields, maxlen=STREAM_MAXLEN, approximate=True)

    async def read_reports(
        self, scan_id: ScanId, last_id: str = "0", block_ms: int = 100
    ) -> tuple[str, list[WorkerReport]]:
        last_id, entries = await self._entries_after(
            self.key(Key.REPORTS, scan_id), last_id, block_ms
        )
        return last_id, [
            WorkerReport.model_validate_json(fields[b"report"])
            for fields in entries
            if b"report" in fields  # the reducer's done mark only wakes the reader
        ]

    async def set_progress(self, progress: Progress) -> None:
        await self.redis.set(self.key(Key.PROGRESS), progress.model_dump_json())

    async def get_progress(self) -> Optional[Progress]:
        raw = await self.redis.get(self.key(Key.PROGRESS))
        return Progress.model_validate_json(raw) if raw else None

    async def set_reducer_done(self, scan_id: ScanId) -> None:
        """Mark the reducer's ``finish`` done, and wake the controller's read of the scan's
        reports: it would otherwise see the mark only at its next poll."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key(Key.REDUCER_DONE, scan_id), b"1", ex=24 * 3600)
            mark: dict[FieldT, EncodableT] = {"reducer_done": b"1"}
            pipe.xadd(self.key(Key.REPORTS, scan_id), mark, maxlen=STREAM_MAXLEN, approximate=True)
            await pipe.execute()

    async def reducer_done(self, scan_id: ScanId) -> bool:
        return bool(await self.redis.exists(self.key(Key.REDUCER_DONE, scan_id)))

    async def join_scan(self, scan_id: ScanId, member: str) -> bool:
        """Record that ``member`` takes part in the scan, unless the controller stopped or
        replaced it meanwhile; returns whether it joined.

        Checked and recorded in one step, so once the scan record says stopped (or names another
        scan) the set of members is final: the reducer knows which workers will still say done.
        """
        script = (
            "local raw = redis.call('get', KEYS[1]) "
            "if not raw then return 0 end "
            "local scan = cjson.decode(raw) "
            "if scan['scan_id'] ~= ARGV[1] or scan['stopped'] == true then return 0 end "
            "redis.call('sadd', KEYS[2], ARGV[2]) "
            "redis.call('expire', KEYS[2], 86400) "
            "return 1"
        )
        keys = (self.key(Key.SCAN), self.key(Key.JOINED, scan_id))
        return bool(await self.redis.eval(script, 2, *keys, scan_id, member))

    async def joined(self, scan_id: ScanId) -> set[str]:
        """The members that joined the scan (:meth:`join_scan`)."""
        return {_text(m) for m in await self.redis.smembers(self.key(Key.JOINED, scan_id))}

    async def expire_scan_streams(self, scan_id: ScanId, seconds: int = SCAN_STREAMS_TTL) -> None:
        """Let a finished scan's streams (and account record) expire: kept for late readers
        and for a look after the scan, they would otherwise add up scan after scan."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for kind in (Key.ASSIGNED, Key.REPORTS, Key.ACCOUNT):
                pipe.expire(self.key(kind, scan_id), seconds)
            await pipe.execute()

    # -- parameters ---------------------------------------------------------------------------

    async def set_parameter(self, name: str, data: bytes) -> int:
        """Store a raw value and bump the version every component watches."""
        return await self.set_parameters({name: data})

    async def set_parameters(self, values: Mapping[str, bytes]) -> int:
        """Store several raw values with one version bump, so nobody sees half of them."""
        pipe = self.redis.pipeline(transaction=True)
        if values:
            mapping: dict[EncodableT, EncodableT] = dict(values.items())
            pipe.hset(self.key(Key.PARAMETERS), mapping=mapping)
            ids: dict[EncodableT, EncodableT] = {n: uuid.uuid4().hex for n in values}
            pipe.hset(self.key(Key.PARAMETER_UUIDS), mapping=ids)
        pipe.incr(self.key(Key.PARAMETERS_VERSION))
        *_, version = await pipe.execute()
        return int(version)

    async def parameters_version(self) -> int:
        raw = await self.redis.get(self.key(Key.PARAMETERS_VERSION))
        return int(raw) if raw else 0

    async def get_parameters(self) -> tuple[int, dict[str, bytes]]:
        """Version and raw values, read together so they match."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.key(Key.PARAMETERS_VERSION))
        pipe.hgetall(self.key(Key.PARAMETERS))
        version, values = await pipe.execute()
        return (
            int(version) if version else 0,
            {k.decode(): bytes(v) for k, v in (values or {}).items()},
        )

    async def parameter_uuids(self) -> dict[str, str]:
        """Each stored value's id (hex), the original dranspose's per-parameter version."""
        raw = await self.redis.hgetall(self.key(Key.PARAMETER_UUIDS))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def set_descriptions(self, component: str, descriptions: list[dict[str, Any]]) -> None:
        await self.redis.hset(self.key(Key.DESCRIPTIONS), component, json.dumps(descriptions))

    async def get_descriptions(self) -> dict[str, list[dict[str, Any]]]:
        raw = await self.redis.hgetall(self.key(Key.DESCRIPTIONS))
        return {_text(k): json.loads(v) for k, v in raw.items()}

    # -- statistics ---------------------------------------------------------------------------

    async def set_stats(self, stats: ComponentStats, ttl: float) -> None:
        await self.redis.set(
            self.key(Key.STATS, stats.kind.value, stats.name),
            stats.model_dump_json(),
            px=int(ttl * 1000),
        )

    async def all_stats(self) -> list[ComponentStats]:
        keys = [k async for k in self.redis.scan_iter(match=self.key(Key.STATS, "*"), count=500)]
        values = await self.redis.mget(keys) if keys else []
        return sorted(
            (ComponentStats.model_validate_json(v) for v in values if v is not None),
            key=lambda s: (s.kind.value, s.name),
        )

    # -- logs ---------------------------------------------------------------------------------

    async def append_logs(self, entries: Sequence[str]) -> None:
        """Append LogEntry JSON documents, in order, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for entry in entries:
            pipe.xadd(self.key(Key.LOGS), {"r": entry}, maxlen=LOG_STREAM_MAXLEN, approximate=True)
        await pipe.execute()

    @staticmethod
    def _log_entries(entries: Any) -> list[tuple[str, LogEntry]]:
        return [(_text(i), LogEntry.model_validate_json(f[b"r"])) for i, f in entries or []]

    async def logs_after(self, start: str, count: int) -> list[tuple[str, LogEntry]]:
        """Up to ``count`` records with ids after ``start`` (exclusive), oldest first."""
        return self._log_entries(
            await self.redis.xrange(self.key(Key.LOGS), min=f"({start}", count=count)
        )

    async def logs_before(self, end: Optional[str], count: int) -> list[tuple[str, LogEntry]]:
        """Up to ``count`` records before ``end`` (exclusive; None: the newest), newest first."""
        return self._log_entries(
            await self.redis.xrevrange(
                self.key(Key.LOGS), max="+" if end is None else f"({end}", count=count
            )
        )

    async def last_log_id(self) -> str:
        """Id of the newest record, ``0-0`` when there is none."""
        newest = await self.logs_before(None, 1)
        return newest[0][0] if newest else "0-0"

    async def wait_logs(self, last_id: str, block_ms: int) -> list[tuple[str, LogEntry]]:
        """Records after ``last_id``, waiting up to ``block_ms`` for one (none if Redis is away)."""
        reply = await self._xread(self.key(Key.LOGS), last_id, block_ms)
        return [item for _stream, entries in reply or [] for item in self._log_entries(entries)]

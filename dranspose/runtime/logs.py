"""Log records of every component: one structured line on stdout, and a copy in a capped Redis stream.

Which component wrote a record is a context variable: :class:`~dranspose.runtime.component.Component`
binds its name for its own tasks, payload threads bind it in their initializer, and the command
line binds the process's name. So even several components in one process (tests, a multi-stream
ingester) attribute their records correctly.

:class:`LogShipper` is the handler that copies records to Redis. Logging must never wait for
Redis: ``emit`` only appends to a bounded buffer (dropping the oldest record, counted, when it is
full) and a task of the component's event loop flushes the buffer in batches.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import datetime
import logging
import sys
import threading
from typing import TYPE_CHECKING, Optional, TextIO

from dranspose.core.logs import LEVELS, LogEntry

if TYPE_CHECKING:
    from dranspose.io.store import Store

logger = logging.getLogger(__name__)

SHIP_BUFFER = 5000
"""Records a component keeps while Redis is slow or away; older ones are dropped beyond that."""
FLUSH_SECONDS = 0.2
FLUSH_BATCH = 1000
FLUSH_TIMEOUT = 5.0
RETRY_SECONDS = 1.0

_component: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    "dranspose_component", default=None
)


def bind_component(name: str) -> contextvars.Token[Optional[str]]:
    """Attribute records logged in the current context (and tasks started from it) to ``name``.

    Also usable as a thread-pool ``initializer``: a thread's context is its own, so payload
    threads bind the name once when they start.
    """
    return _component.set(name)


def unbind_component(token: contextvars.Token[Optional[str]]) -> None:
    _component.reset(token)


def current_component() -> Optional[str]:
    return _component.get()


def _full_message(record: logging.LogRecord, formatter: logging.Formatter) -> str:
    """The message with the exception and stack text a formatter would append."""
    message = record.getMessage()
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    if record.exc_text:
        message = f"{message}\n{record.exc_text}"
    if record.stack_info:
        message = f"{message}\n{formatter.formatStack(record.stack_info)}"
    return message


class StructuredFormatter(logging.Formatter):
    """``2026-11-22T02:30:00.123Z INFO worker-1 dranspose.worker: message`` on one line.

    Continuation lines of a multi-line message or traceback are indented by four spaces, so a
    line that starts in column 0 always starts a new record.
    """

    def __init__(self, default_component: str) -> None:
        super().__init__()
        self.default_component = default_component

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created, tz=datetime.timezone.utc)
        when = stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        component = current_component() or self.default_component
        text = _full_message(record, self).replace("\n", "\n    ")
        return f"{when} {record.levelname} {component} {record.name}: {text}"


PLAIN_COMMANDS = frozenset({"replay", "source", "capture", "convert", "protocols"})
"""Offline tools keep the ``LEVEL:logger:message`` lines on stderr that the tutorial shows."""


def configure_logging(
    command: str,
    level_name: Optional[str] = None,
    log_format: Optional[str] = None,
    stream: Optional[TextIO] = None,
) -> None:
    """The one logging setup of every ``dranspose`` sub-command.

    ``level_name`` (``$LOG_LEVEL``: DEBUG, INFO, ...; default INFO) sets the verbosity. Services
    log the structured one-line format to stdout; offline tools keep the plain format on stderr.
    ``log_format`` (``$LOG_FORMAT``: structured or plain) overrides the choice. The command line
    passes both from its settings (:mod:`dranspose.cli.settings`).
    """
    level_name = (level_name or "INFO").upper()
    level = LEVELS.get(level_name)
    if level is None:
        print(
            f"dranspose: LOG_LEVEL={level_name!r} is not a log level "
            f"({', '.join(LEVELS)}); using INFO",
            file=sys.stderr,
        )
        level = logging.INFO
    chosen = (log_format or ("plain" if command in PLAIN_COMMANDS else "structured")).lower()
    if chosen not in ("plain", "structured"):
        print(
            f"dranspose: LOG_FORMAT={chosen!r} is not 'plain' or 'structured'; using structured",
            file=sys.stderr,
        )
        chosen = "structured"
    if chosen == "plain":
        logging.basicConfig(level=level, stream=stream or sys.stderr)
    else:
        handler = logging.StreamHandler(stream or sys.stdout)
        handler.setFormatter(StructuredFormatter(command))
        logging.basicConfig(level=level, handlers=[handler])
    bind_component(command)


class LogShipper(logging.Handler):
    """Copies one component's records to the Redis log stream, without ever blocking the caller.

    A shipper takes the records bound to its component. Exactly one shipper of a process is the
    *catch-all*: it also takes records no other shipper claims (logged outside any component's
    context, e.g. by the HTTP server), under their bound name or else its own.
    """

    def __init__(self, store: Store, component: str, capacity: int = SHIP_BUFFER) -> None:
        super().__init__(logging.NOTSET)
        self.store = store
        self.component = component
        self.capacity = capacity
        self.catch_all = False
        self.dropped = 0
        self.shipped = 0
        self._buffer: collections.deque[str] = collections.deque()
        self._buffer_lock = threading.Lock()
        self._plain = logging.Formatter()
        self._task: Optional[asyncio.Task[None]] = None
        self._failing = False

    # -- called from any thread ----------------------------------------------------------------

    def _owner(self, record: logging.LogRecord) -> Optional[str]:
        """The component name to store the record under, or None if another shipper takes it."""
        if record.name == __name__:
            return None  # the shipper's own complaints about Redis stay on stdout
        bound = current_component()
        if bound == self.component:
            return bound
        if not self.catch_all:
            return None
        if bound is not None and any(
            isinstance(h, LogShipper) and h.component == bound for h in logging.getLogger().handlers
        ):
            return None
        return bound or self.component

    def emit(self, record: logging.LogRecord) -> None:
        try:
            owner = self._owner(record)
            if owner is None:
                return
            entry = LogEntry(
                time=record.created,
                component=owner,
                level=record.levelname,
                levelno=record.levelno,
                logger=record.name,
                message=_full_message(record, self._plain),
                lineno=record.lineno,
            )
            self._push([entry.model_dump_json()])
        except Exception:
            self.handleError(record)

    def _push(self, items: list[str], front: bool = False) -> None:
        with self._buffer_lock:
            if front:
                self._buffer.extendleft(reversed(items))
            else:
                self._buffer.extend(items)
            excess = len(self._buffer) - self.capacity
            for _ in range(max(excess, 0)):
                self._buffer.popleft()  # the oldest goes: the latest records matter most
            self.dropped += max(excess, 0)

    def _take(self, limit: int) -> list[str]:
        with self._buffer_lock:
            n = min(limit, len(self._buffer))
            return [self._buffer.popleft() for _ in range(n)]

    @property
    def pending(self) -> int:
        return len(self._buffer)

    # -- the component's event loop ------------------------------------------------------------

    async def flush_once(self) -> bool:
        """Send everything buffered; False (records kept) when Redis did not take them."""
        while True:
            batch = self._take(FLUSH_BATCH)
            if not batch:
                return True
            try:
                await asyncio.wait_for(self.store.append_logs(batch), FLUSH_TIMEOUT)
            except (asyncio.CancelledError, KeyboardInterrupt):
                self._push(batch, front=True)
                raise
            except Exception as exc:
                self._push(batch, front=True)
                if not self._failing:
                    logger.warning(
                        "%s: log records cannot reach Redis (%s); keeping the last %d meanwhile",
                        self.component,
                        exc,
                        self.capacity,
                    )
                self._failing = True
                return False
            if self._failing:
                logger.warning("%s: log records reach Redis again", self.component)
                self._failing = False
            self.shipped += len(batch)

    async def _run(self) -> None:
        while True:
            ok = await self.flush_once()
            await asyncio.sleep(FLUSH_SECONDS if ok else RETRY_SECONDS)

    def install(self) -> None:
        """Attach to the root logger and start flushing in the running loop."""
        root = logging.getLogger()
        self.catch_all = not any(isinstance(h, LogShipper) and h.catch_all for h in root.handlers)
        root.addHandler(self)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def uninstall(self, timeout: float = 2.0) -> None:
        """Detach, hand the catch-all role on, and send what is left (bounded by ``timeout``)."""
        root = logging.getLogger()
        root.removeHandler(self)
        if self.catch_all:
            self.catch_all = False
            for handler in root.handlers:
                if isinstance(handler, LogShipper):
                    handler.catch_all = True
                    break
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await asyncio.wait_for(self.flush_once(), timeout)
        except (asyncio.TimeoutError, Exception):
            pass

"""Offline replay: run worker and reducer classes on captured streams, without any servers.

Replay is what a user runs first and what payload test suites call. It follows the distributed
system's rules so that a payload behaving here behaves there: the first event is broadcast to all
worker instances, every other event goes to one of them, results take the same pickle round-trip,
and the reducer sees results in event order. Everything runs in the calling thread except the
optional HTTP server, so payloads need no locks in replay.
"""

from __future__ import annotations

import heapq
import logging
import os
import pickle
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

from dranspose import __version__
from dranspose.capture import CaptureError, read_capture
from dranspose.event import EventData, InternalWorkerMessage, ResultData
from dranspose.parameters import ParameterSet, describe, read_parameter_file
from dranspose.payload import ReducerPayload, WorkerPayload, import_class, instantiate
from dranspose.protocol import (
    EventNumber,
    ReducerName,
    ReducerState,
    WorkerName,
    WorkerState,
    read_build_meta,
)

logger = logging.getLogger(__name__)

DEFAULT_TICK_INTERVAL = 1.0
"""Seconds between ``tick=True`` events for workers without ``get_tick_interval``."""

DEFAULT_TIMER_INTERVAL = 1.0
"""Seconds until the next reducer ``timer()`` call when it returns ``None``."""

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class Failure:
    """An event (or end-of-scan step) the payload did not complete, and why."""

    event_number: Optional[int]
    component: str
    stage: str
    message: str

    def describe(self) -> str:
        where = f"event {self.event_number}" if self.event_number is not None else "end of scan"
        return f"{where}: {self.component} {self.stage} failed: {self.message}"


@dataclass
class ReplaySummary:
    """What a replay did, for the final report and for tests."""

    events: int = 0
    results: int = 0
    failures: list[Failure] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def describe(self) -> str:
        rate = self.events / self.seconds if self.seconds > 0 else float("nan")
        text = (
            f"replay: {self.events} events, {self.results} results, "
            f"{len(self.failures)} failures in {self.seconds:.2f} s ({rate:.0f} events/s)"
        )
        if self.stopped_early:
            text += "; stopped early on request"
        return text


def merge_partials(
    sources: Sequence[Iterable[InternalWorkerMessage]],
) -> Iterator[list[InternalWorkerMessage]]:
    """Group the partial events of several sources (one per ingester) by event number.

    Each source is read lazily and in order, so memory stays constant whatever the capture size.
    A source whose numbers go backwards still has every message replayed (as separate events) and
    a warning says where.
    """
    def checked(index: int, source: Iterable[InternalWorkerMessage]) -> Iterator[InternalWorkerMessage]:
        last = None
        for message in source:
            if last is not None and message.event_number < last:
                logger.warning(
                    "source %d: event %d follows event %d; captures should be in event order",
                    index, message.event_number, last,
                )
            last = message.event_number
            yield message

    merged = heapq.merge(
        *(checked(i, s) for i, s in enumerate(sources)), key=lambda m: m.event_number
    )
    pending: list[InternalWorkerMessage] = []
    try:
        for partial in merged:
            if pending and partial.event_number != pending[0].event_number:
                yield pending
                pending = []
            pending.append(partial)
    except Exception:
        # A source failed while we held a complete earlier event: hand it out before the error.
        if pending:
            yield pending
        raise
    if pending:
        yield pending


def _source_iterators(
    zmq_files: Optional[Sequence[PathLike]], source: Optional[Union[str, type, Any]]
) -> list[Iterable[InternalWorkerMessage]]:
    iterators: list[Iterable[InternalWorkerMessage]] = []
    if zmq_files:
        if isinstance(zmq_files, (str, os.PathLike)):
            zmq_files = [zmq_files]
        iterators.extend(read_capture(path) for path in zmq_files)
    if source is not None:
        if isinstance(source, (str, type)):
            source = instantiate(import_class(source))
        iterators.extend(source.get_source_generators())
    if not iterators:
        raise ValueError("replay needs capture files (-f) or a source class (--source)")
    return iterators


class ReplayRun:
    """One replay: payload instances, the current parameters and the running tally.

    ``parameters`` may be replaced from another thread (the HTTP API); each event reads the
    reference once, so it is processed with one consistent parameter set.
    """

    def __init__(
        self,
        wclass: Union[str, type],
        rclass: Union[str, type],
        parameter_file: Optional[PathLike] = None,
        nworkers: int = 2,
        broadcast_first: bool = True,
    ) -> None:
        if nworkers < 1:
            raise ValueError(f"nworkers must be at least 1, got {nworkers}")
        self.worker_class = import_class(wclass)
        self.reducer_class = import_class(rclass)
        descriptions = describe([self.worker_class, self.reducer_class])
        raw = read_parameter_file(parameter_file) if parameter_file else {}
        self.parameters = ParameterSet.from_raw(descriptions, raw)
        self.parameter_lock = threading.Lock()
        self.broadcast_first = broadcast_first
        meta = read_build_meta()
        self.workers = [
            WorkerPayload(
                self.worker_class,
                parameters=self.parameters,
                context={},
                state=WorkerState(
                    name=WorkerName(f"development{i}"),
                    dranspose_version=__version__,
                    mapreduce_version=meta,
                ),
            )
            for i in range(nworkers)
        ]
        self.worker_names = [WorkerName(f"development{i}") for i in range(nworkers)]
        self.reducer = ReducerPayload(
            self.reducer_class,
            parameters=self.parameters,
            context={},
            state=ReducerState(
                name=ReducerName("development_reducer"),
                dranspose_version=__version__,
                mapreduce_version=meta,
            ),
        )
        self.summary = ReplaySummary()
        self._last_tick = [time.monotonic()] * nworkers
        self._next_timer = time.monotonic()
        self._round_robin = 0

    # -- parameters -------------------------------------------------------------------------

    def set_parameter(self, name: str, data: bytes) -> ParameterSet:
        """Validate and apply a new raw value; the next event uses it."""
        with self.parameter_lock:
            self.parameters = self.parameters.with_data(name, data)
            logger.info("parameter %s set to %r", name, self.parameters[name].value)
            return self.parameters

    # -- processing -------------------------------------------------------------------------

    def _fail(self, event_number: Optional[int], component: str, stage: str, exc: BaseException) -> None:
        failure = Failure(event_number, component, stage, f"{type(exc).__name__}: {exc}")
        self.summary.failures.append(failure)
        logger.error("%s\n%s", failure.describe(), traceback.format_exc())

    def _tick(self, index: int, parameters: ParameterSet) -> bool:
        worker = self.workers[index]
        interval = DEFAULT_TICK_INTERVAL
        if worker.get_tick_interval is not None:
            try:
                interval = float(worker.get_tick_interval(parameters))
            except Exception as exc:  # a broken tick interval must not stop the replay
                self._fail(None, self.worker_names[index], "get_tick_interval", exc)
                worker.get_tick_interval = None
        now = time.monotonic()
        if now - self._last_tick[index] >= interval:
            self._last_tick[index] = now
            return True
        return False

    def _run_worker(self, index: int, event: EventData, parameters: ParameterSet) -> None:
        name = self.worker_names[index]
        try:
            payload = self.workers[index].process_event(event, parameters, self._tick(index, parameters))
        except Exception as exc:
            self._fail(event.event_number, name, "process_event", exc)
            return
        if payload is None:
            return
        try:
            # The distributed system pickles results on their way to the reducer; do the same so
            # an unpicklable result fails here and not first at the beamline.
            payload = pickle.loads(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception as exc:
            self._fail(event.event_number, name, "result pickling", exc)
            return
        result = ResultData.model_construct(
            event_number=event.event_number,
            worker=name,
            parameters_hash=parameters.hash,
            payload=payload,
        )
        self.summary.results += 1
        try:
            self.reducer.process_result(result, parameters)
        except Exception as exc:
            self._fail(event.event_number, "reducer", "process_result", exc)

    def maybe_call_timer(self) -> None:
        """Call the reducer's ``timer()`` when due; it returns the seconds until the next call."""
        if self.reducer.timer is None or time.monotonic() < self._next_timer:
            return
        delay: Any = None
        try:
            delay = self.reducer.timer()
        except Exception as exc:
            self._fail(None, "reducer", "timer", exc)
        try:
            seconds = DEFAULT_TIMER_INTERVAL if delay is None else max(float(delay), 0.0)
        except (TypeError, ValueError):
            logger.error("reducer timer() returned %r, expected seconds; using %s s",
                         delay, DEFAULT_TIMER_INTERVAL)
            seconds = DEFAULT_TIMER_INTERVAL
        self._next_timer = time.monotonic() + seconds

    def process(self, partials: list[InternalWorkerMessage], first: bool) -> None:
        """Assemble one event and run it through the workers it is assigned to and the reducer."""
        parameters = self.parameters
        number = partials[0].event_number
        try:
            event = EventData.from_internals(partials)
        except ValueError as exc:
            self._fail(number, "replay", "event assembly", exc)
            return
        self.summary.events += 1
        if first and self.broadcast_first:
            targets: Iterable[int] = range(len(self.workers))
        else:
            targets = (self._round_robin,)
            self._round_robin = (self._round_robin + 1) % len(self.workers)
        for index in targets:
            self._run_worker(index, event, parameters)
        self.maybe_call_timer()

    def finish(self) -> None:
        parameters = self.parameters
        for name, worker in zip(self.worker_names, self.workers):
            if worker.finish is not None:
                try:
                    worker.finish(parameters)
                except Exception as exc:
                    self._fail(None, name, "finish", exc)
        if self.reducer.finish is not None:
            try:
                self.reducer.finish(parameters)
            except Exception as exc:
                self._fail(None, "reducer", "finish", exc)


def _wait_until_stopped(stop_event: Optional[threading.Event]) -> None:
    """Block until ``stop_event`` is set, or forever (until Ctrl-C) without one."""
    while stop_event is None or not stop_event.is_set():
        if stop_event is None:
            time.sleep(0.2)
        else:
            stop_event.wait(0.2)


def _progress(enabled: bool):  # type: ignore[no-untyped-def]
    """A live events/s display on a terminal, nothing otherwise."""
    if not enabled:
        return None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("replay: {task.completed} events"),
        TextColumn("{task.fields[rate]:.0f} events/s"),
        TimeElapsedColumn(),
        transient=True,
    )


def run_replay(
    wclass: Union[str, type],
    rclass: Union[str, type],
    zmq_files: Optional[Sequence[PathLike]] = None,
    source: Optional[Union[str, type, Any]] = None,
    parameter_file: Optional[PathLike] = None,
    port: Optional[int] = None,
    stop_event: Optional[threading.Event] = None,
    nworkers: int = 2,
    broadcast_first: bool = True,
    done_event: Optional[threading.Event] = None,
    start_event: Optional[threading.Event] = None,
    keep_alive: bool = False,
    show_progress: Optional[bool] = None,
    host: str = "127.0.0.1",
) -> ReplaySummary:
    """Replay and return the summary; see :func:`replay` for the arguments."""
    run = ReplayRun(wclass, rclass, parameter_file, nworkers, broadcast_first)
    iterators = _source_iterators(zmq_files, source)
    server = None
    if port is not None:
        from dranspose.reducer_api import ReplayHost, serve_in_thread

        server = serve_in_thread(ReplayHost(run), address=host, port=port)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    progress = _progress(show_progress)
    started = time.monotonic()
    try:
        if start_event is not None:
            start_event.set()
        task = progress.add_task("replay", total=None, rate=0.0) if progress else None
        if progress:
            progress.start()
        try:
            for index, partials in enumerate(merge_partials(iterators)):
                if stop_event is not None and stop_event.is_set():
                    run.summary.stopped_early = True
                    logger.warning("replay stopped on request after %d events", run.summary.events)
                    break
                run.process(partials, first=index == 0)
                if progress and index % 64 == 0:
                    elapsed = time.monotonic() - started
                    progress.update(task, completed=run.summary.events,
                                    rate=run.summary.events / elapsed if elapsed > 0 else 0.0)
        except CaptureError as exc:
            # The events read so far are processed and finish() still runs, so output files are
            # complete up to the damage; the failure is reported and the exit code says so.
            run.summary.failures.append(Failure(None, "capture", "read", str(exc)))
            logger.error("capture read failed after %d events: %s", run.summary.events, exc)
        if progress:
            progress.stop()
        run.finish()
        run.summary.seconds = time.monotonic() - started
        if done_event is not None:
            done_event.set()
        if server is not None and (keep_alive or stop_event is not None):
            logger.info("serving results on http://%s:%d/api/v1/result/ until stopped", host, port)
            try:
                _wait_until_stopped(stop_event)
            except KeyboardInterrupt:  # Ctrl-C is how a user ends --keep-alive
                logger.info("stopping the results server")
    finally:
        if progress and progress.live.is_started:
            progress.stop()
        if server is not None:
            server.stop()
        if done_event is not None:
            done_event.set()
    return run.summary


def replay(
    wclass: Union[str, type],
    rclass: Union[str, type],
    zmq_files: Optional[Sequence[PathLike]] = None,
    source: Optional[Union[str, type, Any]] = None,
    parameter_file: Optional[PathLike] = None,
    port: Optional[int] = None,
    stop_event: Optional[threading.Event] = None,
    nworkers: int = 2,
    broadcast_first: bool = True,
    done_event: Optional[threading.Event] = None,
    start_event: Optional[threading.Event] = None,
    *,
    keep_alive: bool = False,
) -> ReplaySummary:
    """Run ``wclass`` workers and the ``rclass`` reducer over captured events.

    ``wclass``/``rclass`` are classes or ``"module:Class"`` strings (imported from the current
    directory). Events come from ``zmq_files`` (capture files, one per ingester, merged by event
    number) and/or ``source`` (a class whose ``get_source_generators()`` returns iterators of
    :class:`~dranspose.event.InternalWorkerMessage`). With ``port``, the reducer's ``publish``
    and the parameters are served over HTTP; the server stays up after the replay until
    ``stop_event`` is set when one is given (or with ``keep_alive``). ``done_event`` is set once
    ``finish`` has run, ``start_event`` once the replay is ready to process.
    """
    summary = run_replay(
        wclass, rclass, zmq_files, source, parameter_file, port, stop_event, nworkers,
        broadcast_first, done_event, start_event, keep_alive=keep_alive,
    )
    logger.info("%s", summary.describe())
    for failure in summary.failures:
        logger.error("FAILED %s", failure.describe())
    return summary


__all__ = ["replay", "run_replay", "ReplaySummary", "Failure", "merge_partials", "EventNumber"]

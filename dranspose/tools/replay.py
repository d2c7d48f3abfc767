"""Offline replay: run worker and reducer classes on captured streams, without any servers.

Replay is what a user runs first and what payload test suites call. It follows the distributed
system's rules so that a payload behaving here behaves there: the first event is broadcast to all
worker instances, every other event goes to one of them, results take the same pickle round-trip,
and the reducer sees results in event order. Everything runs in the calling thread except the
optional HTTP server, so payloads need no locks in replay.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence, Union

from dranspose import __version__
from dranspose.core.calling import (
    DEFAULT_TICK_INTERVAL,
    DEFAULT_TIMER_INTERVAL,
    Outcome,
    ReducerCalls,
    ReplayDispatch,
    WorkerCalls,
    pickle_result,
)
from dranspose.core.construct import trusted
from dranspose.core.event import EventData, InternalWorkerMessage, ResultData
from dranspose.core.parameters import ParameterSet, describe, read_parameter_file
from dranspose.core.payload import ReducerPayload, WorkerPayload, import_class
from dranspose.core.protocol import (
    BuildGitMeta,
    BuildMetaError,
    EventNumber,
    ParameterName,
    ReducerName,
    ReducerState,
    WorkerName,
    WorkerState,
)
from dranspose.http.auth import AccessPolicy
from dranspose.io.build_meta import read_build_meta
from dranspose.io.capture import CaptureError
from dranspose.tools.replay_input import PathLike, merge_partials, source_iterators
from dranspose.tools.replay_summary import Failure, ReplaySummary

if TYPE_CHECKING:
    from rich.progress import Progress

    from dranspose.tools.serving import RunningServer

# the name payload authors see in their replay output (and the tutorial shows)
logger = logging.getLogger("dranspose.replay")


class ReplayScan:
    """One replay: payload instances, the current parameters and the running tally.

    ``parameters`` may be replaced from another thread (the HTTP API); each event reads the
    reference once, so it is processed with one consistent parameter set. How each payload
    method is called is :mod:`dranspose.core.calling`'s, the same as in the live worker and reducer.
    """

    def __init__(
        self,
        wclass: Union[str, type],
        rclass: Union[str, type],
        parameter_file: Optional[PathLike] = None,
        nworkers: int = 2,
        broadcast_first: bool = True,
        summary: Optional[ReplaySummary] = None,
        build_meta: Optional[BuildGitMeta] = None,
    ) -> None:
        """``build_meta`` is the payload's provenance its ``state.mapreduce_version`` shows."""
        self.summary = summary if summary is not None else ReplaySummary()
        self.dispatch = ReplayDispatch(nworkers, broadcast_first)
        self.worker_class = import_class(wclass)
        self.reducer_class = import_class(rclass)
        descriptions = describe([self.worker_class, self.reducer_class])
        raw = read_parameter_file(os.fspath(parameter_file)) if parameter_file else {}
        self.parameters = ParameterSet.from_raw(descriptions, raw)
        self.parameter_lock = threading.Lock()
        meta = build_meta
        self.worker_names = [WorkerName(f"development{i}") for i in range(nworkers)]
        now = time.monotonic()
        self.workers = [
            WorkerCalls(
                WorkerPayload(
                    self.worker_class,
                    parameters=self.parameters,
                    context={},
                    state=WorkerState(
                        name=name, dranspose_version=__version__, mapreduce_version=meta
                    ),
                ),
                name,
            )
            for name in self.worker_names
        ]
        self.reducer = ReducerCalls(
            ReducerPayload(
                self.reducer_class,
                parameters=self.parameters,
                context={},
                state=ReducerState(
                    name=ReducerName("development_reducer"),
                    dranspose_version=__version__,
                    mapreduce_version=meta,
                ),
            ),
            now,
        )

    # -- parameters -------------------------------------------------------------------------

    def set_parameter(self, name: str, data: bytes) -> ParameterSet:
        """Validate and apply a new raw value; the next event uses it."""
        with self.parameter_lock:
            self.parameters = self.parameters.with_data(name, data)
            logger.info("parameter %s set to %r", name, self.parameters[ParameterName(name)].value)
            return self.parameters

    # -- processing -------------------------------------------------------------------------

    def _record(
        self, event_number: Optional[int], component: str, stage: str, outcome: Outcome
    ) -> bool:
        """Log a failed outcome and add it to the summary."""
        if outcome.failure is None:
            return True
        failure = Failure(event_number, component, stage, outcome.failure)
        if self.summary.add(failure, outcome.traceback):
            logger.error("%s\n%s", failure.describe(), outcome.traceback)
        else:  # one of a kind already shown: counted in the summary, not printed again
            logger.debug("%s (failed as before)", failure.describe())
        return False

    def _collect_notes(self) -> None:
        every: list[Union[WorkerCalls, ReducerCalls]] = [*self.workers, self.reducer]
        for calls in every:
            component = calls.name if isinstance(calls, WorkerCalls) else "reducer"
            for stage, message in calls.notes:  # logged by the calling policy already
                self.summary.add(Failure(None, component, stage, message))
            calls.notes.clear()

    def _run_worker(self, calls: WorkerCalls, event: EventData, parameters: ParameterSet) -> None:
        number = event.event_number
        outcome = calls.process_event(event, parameters, time.monotonic())
        self._collect_notes()
        if not self._record(number, calls.name, "process_event", outcome) or outcome.value is None:
            return
        # The distributed system pickles results on their way to the reducer; so does replay.
        pickled = pickle_result(outcome.value)
        if not self._record(number, calls.name, "result pickling", pickled):
            return
        result = trusted(
            ResultData,
            {
                "event_number": number,
                "worker": WorkerName(calls.name),
                "parameters_hash": parameters.hash,
                "payload": pickle.loads(pickled.value),
                "redelivered": False,
            },
        )
        self.summary.results += 1
        self._record(
            number, "reducer", "process_result", self.reducer.process_result(result, parameters)
        )

    def maybe_call_timer(self) -> None:
        """Call the reducer's ``timer()`` when due; it returns the seconds until the next call."""
        if self.reducer.timer_due(time.monotonic()):
            self._record(
                None, "reducer", "timer", self.reducer.call_timer(self.parameters, time.monotonic())
            )
            self._collect_notes()

    def process(self, partials: list[InternalWorkerMessage], first: bool = False) -> None:
        """Assemble one event and run it through the workers it is assigned to and the reducer.

        ``first`` is accepted for callers of earlier versions; the dispatch knows the first event.
        """
        parameters = self.parameters
        number = partials[0].event_number
        try:
            event = EventData.from_internals(partials)
        except ValueError as exc:
            logger.error("event %s cannot be assembled: %s", number, exc)
            self.summary.add_lost(Failure(number, "replay", "event assembly", str(exc)))
            return
        self.summary.events += 1
        for index in self.dispatch.targets():
            self._run_worker(self.workers[index], event, parameters)
        self.maybe_call_timer()

    def finish(self) -> None:
        parameters = self.parameters
        for calls in self.workers:
            self._record(None, calls.name, "finish", calls.finish(parameters))
        self._record(None, "reducer", "finish", self.reducer.finish(parameters))


def _wait_until_stopped(stop_event: Optional[threading.Event], run: ReplayScan) -> None:
    """Block until ``stop_event`` is set, or forever (until Ctrl-C) without one.

    The reducer's ``timer()`` keeps being called meanwhile, as in the original dranspose, so a
    payload that refreshes ``publish`` from its timer does so while the results are served.
    """
    while stop_event is None or not stop_event.is_set():
        if stop_event is None:
            time.sleep(0.05)
        else:
            stop_event.wait(0.05)
        run.maybe_call_timer()


def _wait_for_start(start_event: threading.Event, stop_event: Optional[threading.Event]) -> None:
    """Wait until the caller opens the gate (or stops the replay)."""
    if not start_event.is_set():
        logger.info("replay ready; waiting for start_event before the first event")
    while not start_event.wait(0.05):
        if stop_event is not None and stop_event.is_set():
            return


def _progress(enabled: bool) -> Optional[Progress]:
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
    latency: Optional[float] = None,
    keep_alive: bool = False,
    show_progress: Optional[bool] = None,
    host: str = "127.0.0.1",
    access: Optional[AccessPolicy] = None,
    build_meta: Optional[BuildGitMeta] = None,
) -> ReplaySummary:
    """Replay and return the summary; see :func:`replay` for the arguments.

    ``access`` guards the HTTP API of ``port`` (default: open); ``build_meta`` is the payload's
    provenance (default: none). The command line passes both from its settings.

    Whatever fails (the payload does not import, the parameter file cannot be read, the port is
    taken, a source raises), ``done_event`` is set and the HTTP port released before this
    returns or raises, so a payload test waiting on ``done_event`` in another thread fails at
    once with the real error instead of waiting forever. Errors before the first event are
    logged, put in the summary and raised; a source failing mid-run is logged and reported in
    the summary, and ``finish`` still runs so output files are complete up to the damage.
    """
    summary = ReplaySummary()
    started = time.monotonic()
    server: Optional[RunningServer] = None
    try:
        run = ReplayScan(
            wclass, rclass, parameter_file, nworkers, broadcast_first, summary, build_meta
        )
        iterators = source_iterators(zmq_files, source)
        if port is not None:
            from dranspose.http.reducer_api import ReplayHost, create_app
            from dranspose.tools.serving import serve_in_thread

            app = create_app(ReplayHost(run), access)
            server = serve_in_thread(app, address=host, port=port, what="the reducer API")
    except Exception as exc:
        summary.add(Failure(None, "replay", "setup", f"{type(exc).__name__}: {exc}"))
        # no traceback here: the exception is raised to the caller, which has it
        logger.error("replay cannot start: %s: %s", type(exc).__name__, exc)
        if done_event is not None:
            done_event.set()
        raise
    progress: Optional[Progress] = None
    try:
        progress = _progress(sys.stderr.isatty() if show_progress is None else show_progress)
        if start_event is not None:
            _wait_for_start(start_event, stop_event)
        _feed(run, iterators, progress, stop_event, latency, started)
        run.finish()
        summary.seconds = time.monotonic() - started
        if done_event is not None:
            done_event.set()
        if server is not None and (keep_alive or stop_event is not None):
            logger.info("serving results on http://%s:%d/api/v1/result/ until stopped", host, port)
            try:
                _wait_until_stopped(stop_event, run)
            except KeyboardInterrupt:  # Ctrl-C is how a user ends --keep-alive
                logger.info("stopping the results server")
    finally:
        if progress and progress.live.is_started:
            progress.stop()
        if server is not None:
            server.stop()
        if done_event is not None:
            done_event.set()
    return summary


def _feed(
    run: ReplayScan,
    iterators: list[Iterable[InternalWorkerMessage]],
    progress: Optional[Progress],
    stop_event: Optional[threading.Event],
    latency: Optional[float],
    started: float,
) -> None:
    """Process every event the sources give, until they end, fail or ``stop_event`` is set.

    A source that fails part way is reported in the summary, not raised: the events read so far
    are processed and the caller still runs ``finish``, so output files are complete up to the
    damage and the exit code says what happened.
    """
    summary = run.summary
    task = progress.add_task("replay", total=None, rate=0.0) if progress else None
    if progress:
        progress.start()
    try:
        for index, partials in enumerate(merge_partials(iterators)):
            if stop_event is not None and stop_event.is_set():
                summary.stopped_early = True
                logger.warning("replay stopped on request after %d events", summary.events)
                break
            run.process(partials)
            if latency:
                time.sleep(latency)
            if progress and task is not None and index % 64 == 0:
                elapsed = time.monotonic() - started
                rate = summary.events / elapsed if elapsed > 0 else 0.0
                progress.update(task, completed=summary.events, rate=rate)
    except CaptureError as exc:
        summary.add(Failure(None, "capture", "read", str(exc)))
        logger.error("capture read failed after %d events: %s", summary.events, exc)
    except Exception as exc:  # a source class's generator raised
        summary.add(Failure(None, "source", "read", f"{type(exc).__name__}: {exc}"))
        logger.error(
            "source failed after %d events: %s: %s",
            summary.events,
            type(exc).__name__,
            exc,
            exc_info=True,
        )
    if progress:
        progress.stop()


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
    latency: Optional[float] = None,
    *,
    keep_alive: bool = False,
    access: Optional[AccessPolicy] = None,
) -> ReplaySummary:
    """Run ``wclass`` workers and the ``rclass`` reducer over captured events.

    ``wclass``/``rclass`` are classes or ``"module:Class"`` strings (imported from the current
    directory). Events come from ``zmq_files`` (capture files, one per ingester, merged by event
    number) and/or ``source`` (a class whose ``get_source_generators()`` returns iterators of
    :class:`~dranspose.core.event.InternalWorkerMessage`). With ``port``, the reducer's ``publish``
    and the parameters are served over HTTP; the server stays up after the replay until
    ``stop_event`` is set when one is given (or with ``keep_alive``). ``done_event`` is set once
    ``finish`` has run, and also when the replay fails, so a caller waiting on it never hangs.
    ``start_event``, as in the original dranspose, is a gate the caller opens: the replay (with
    its HTTP server already up) waits for it before the first event. ``latency`` sleeps that many
    seconds after each event, to watch results arrive at a beamline-like pace. ``access`` guards
    the HTTP API (default: open, as in the original dranspose).

    The payload's provenance comes from ``$BUILD_META_FILE``, as for a deployed payload
    (:func:`~dranspose.io.build_meta.read_build_meta`): this is the entry point payload test
    suites call, as the command line is for users.
    """
    try:
        build_meta = read_build_meta()
    except BuildMetaError as exc:
        logger.error("replay cannot start: %s: %s", type(exc).__name__, exc)
        if done_event is not None:
            done_event.set()
        raise
    summary = run_replay(
        wclass,
        rclass,
        zmq_files,
        source,
        parameter_file,
        port,
        stop_event,
        nworkers,
        broadcast_first,
        done_event,
        start_event,
        latency,
        keep_alive=keep_alive,
        access=access,
        build_meta=build_meta,
    )
    for line in summary.report_lines():
        logger.error("%s", line)
    logger.info("%s", summary.describe())  # the last line: what happened, in numbers
    return summary


__all__ = [
    "DEFAULT_TICK_INTERVAL",
    "DEFAULT_TIMER_INTERVAL",
    "EventNumber",
    "Failure",
    "ReplaySummary",
    "merge_partials",
    "replay",
    "run_replay",
]

"""The ``dranspose`` command line: one sub-command per component or tool, parsed here.

This module only defines the arguments; what each sub-command does lives in
``dranspose/cli/<group>.py`` (replay, source, services, up, capture), which calls the tools and
the runtime. The environment is read once, into :class:`~dranspose.cli.settings.Settings`, and
handed to the sub-command with its arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from dranspose import __version__
from dranspose.cli.capture import add_capture_tools
from dranspose.cli.options import (
    SubParsers,
    access_options,
    controller_grace_option,
    data_port_option,
    host_option,
    redis_options,
)
from dranspose.cli.original import (
    SettingError,
    add_http_ingester,
    complete_from_environment,
    original_class_option,
)
from dranspose.cli.replay import run_replay
from dranspose.cli.services import (
    default_worker_name,
    run_controller,
    run_ingester,
    run_reducer,
    run_worker,
)
from dranspose.cli.settings import Settings
from dranspose.cli.source import run_source
from dranspose.cli.up import run_up


def _add_replay(sub: SubParsers) -> None:
    p = sub.add_parser(
        "replay",
        help="run worker and reducer classes offline on captured streams",
        description="Run worker and reducer classes on capture files (.cbors, .cbors.gz, .pkls) "
        "or a source class, without Redis or servers. Modules are imported from the current "
        "directory, so 'src.worker:TestWorker' works from a payload folder.",
    )
    p.add_argument(
        "-w",
        "--workerclass",
        required=True,
        metavar="MODULE:CLASS",
        help="worker class, e.g. src.worker:TestWorker",
    )
    p.add_argument(
        "-r",
        "--reducerclass",
        required=True,
        metavar="MODULE:CLASS",
        help="reducer class, e.g. src.reducer:TestReducer",
    )
    p.add_argument(
        "-f",
        "--files",
        nargs="+",
        default=None,
        metavar="FILE",
        help="capture files, one per ingester/stream; merged by event number",
    )
    p.add_argument(
        "-s",
        "--source",
        default=None,
        metavar="MODULE:CLASS",
        help="class whose get_source_generators() yields InternalWorkerMessages",
    )
    p.add_argument(
        "-p",
        "--parameters",
        default=None,
        metavar="FILE",
        help='parameter file: JSON [{"name": ..., "data": ...}], CBOR or .pkl',
    )
    p.add_argument(
        "--workers", type=int, default=2, metavar="N", help="number of worker instances (default 2)"
    )
    p.add_argument(
        "--no-broadcast-first", action="store_true", help="send the first event to one worker only"
    )
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="serve the reducer's publish data and parameters over HTTP on this port",
    )
    p.add_argument("--host", default="127.0.0.1", help="address for --port (default 127.0.0.1)")
    p.add_argument(
        "--keep-alive",
        action="store_true",
        help="with --port: keep serving after the replay until Ctrl-C",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    access_options(p)
    p.set_defaults(func=run_replay)


def _add_source(sub: SubParsers) -> None:
    p = sub.add_parser(
        "source",
        help="serve a synthetic STINS stream, or replay a capture, like a detector",
        description="Stream like a detector: generated STINS series (header, images, "
        "series_end) on a ZMQ PUSH (or PUB) socket, or the messages of a capture file with "
        "--replay, over the transport --protocol uses (PUSH, PUB, a TCP server, or an HTTP "
        "client posting to the ingester). PUSH waits for a receiver, so a PULL ingester loses "
        "nothing. Ctrl-C stops; a one-line summary is printed at the end.",
    )
    p.add_argument(
        "--bind",
        required=True,
        metavar="URL",
        help="address to bind, e.g. tcp://*:9999 (ZMQ, or the TCP server of a TCP "
        "protocol); for an HTTP protocol the ingester's address to post to, e.g. "
        "http://ingester-host:5010",
    )
    p.add_argument(
        "--pub",
        action="store_true",
        help="PUB socket instead of PUSH (never waits, drops what nobody reads)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="HZ",
        help="images (replay: messages) per second; default as fast as possible",
    )
    p.add_argument(
        "--replay",
        default=None,
        metavar="FILE",
        help="send the messages of a raw capture or ingester dump (.cbors, .gz, "
        ".pkls) instead of generated images",
    )
    p.add_argument(
        "--protocol",
        default=None,
        help="with --replay: play the capture as this protocol's upstream, over its "
        "transport (see 'dranspose protocols'); default a PUSH (or --pub) socket",
    )
    p.add_argument(
        "--subscribers",
        type=int,
        default=None,
        metavar="N",
        help="PUB: wait until N subscribers have subscribed before sending (default "
        "1 with --protocol, else 0)",
    )
    p.add_argument(
        "--stream",
        default=None,
        metavar="NAME",
        help="with --replay of an ingester dump: the stream to send (default: first)",
    )
    _add_generated_images(p)
    p.set_defaults(func=run_source)


def _add_generated_images(p: argparse.ArgumentParser) -> None:
    """The options of ``source`` without ``--replay``; all default to None (see cli/source.py)."""
    g = p.add_argument_group("generated images (not with --replay)")
    g.add_argument(
        "--shape",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="image shape (default 10 10)",
    )
    g.add_argument("--dtype", default=None, help="numpy pixel type (default uint16)")
    g.add_argument(
        "--frames", type=int, default=None, metavar="N", help="images per series (default 10)"
    )
    g.add_argument(
        "--compression",
        choices=("none", "bslz4"),
        default=None,
        help="image encoding (default none)",
    )
    g.add_argument("--filename", default=None, help="filename in the series header")
    g.add_argument(
        "--series", type=int, default=None, metavar="K", help="series sent in a row (default 1)"
    )
    g.add_argument(
        "--pause",
        type=float,
        default=None,
        metavar="SECONDS",
        help="pause between series (default 0)",
    )
    g.add_argument(
        "--seed", type=int, default=None, help="seed of the pseudo-random pixels (default 0)"
    )


def _add_controller(sub: SubParsers, settings: Settings) -> None:
    p = sub.add_parser("controller", help="run the controller (REST API, trigger map, progress)")
    redis_options(p, settings)
    host_option(p, settings)
    p.add_argument("--port", type=int, default=5000)
    p.add_argument(
        "--retry-lost",
        action="store_true",
        help="re-deliver the unfinished events of a worker that dies to another "
        "worker with its tags (at-least-once for those events; results carry "
        "'redelivered'); a sequence request may override it with ?retry_lost=",
    )
    p.add_argument(
        "--takeover-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="if another controller holds the lock, wait this long for it to expire "
        "(a successor after a crash; a scan it left running is reported aborted) "
        "instead of refusing at once (default 0)",
    )
    p.add_argument(
        "--parameters",
        default=None,
        metavar="FILE",
        help='set these parameter values at start: JSON [{"name": ..., "data": '
        "...}] or {name: data}, CBOR or .pkl (the format of 'replay -p')",
    )
    access_options(p)
    p.set_defaults(func=run_controller)


def _add_ingester(sub: SubParsers, settings: Settings) -> None:
    p = sub.add_parser(
        "ingester",
        help="read upstream streams and forward their frames to workers",
        description="Read one upstream per stream; repeat --stream/--upstream pairs to serve "
        "several streams from one process.",
    )
    redis_options(p, settings)
    p.add_argument(
        "--stream",
        action="append",
        help="stream name used in trigger maps (repeatable; default $INGESTER_STREAMS)",
    )
    p.add_argument(
        "--upstream",
        "-u",
        "--upstream_url",
        action="append",
        help="upstream address, one per --stream (default $UPSTREAM_URL): the detector's ZMQ "
        "socket "
        "(tcp://det:9999), the TCP server of a TCP protocol (tcp://panda:8889), or "
        "for an HTTP protocol the address to listen on (http://0.0.0.0:5010)",
    )
    p.add_argument(
        "--name",
        "-n",
        default=None,
        help="component name (default $INGESTER_NAME or STREAM-ingester; single stream only); "
        "without --stream, the stream's name (the original's form)",
    )
    p.add_argument(
        "--protocol",
        default=None,
        help="upstream protocol (default stins; see 'dranspose protocols')",
    )
    p.add_argument(
        "-c",
        "--ingesterclass",
        default=None,
        metavar="CLASS",
        help="the original's ingester class instead of --protocol, e.g. ZmqPullSingleIngester",
    )
    p.add_argument(
        "--sub",
        action="store_true",
        help="upstream is a PUB socket (default: what the protocol uses)",
    )
    p.add_argument(
        "--backlog",
        type=int,
        default=None,
        metavar="N",
        help="messages held for the workers at most (default 1000); a SUB upstream "
        "drops and counts what comes while it is full, TCP and HTTP hold the sender "
        "back, PULL reads only when it is empty",
    )
    p.add_argument(
        "--dump",
        default=None,
        metavar="FILE",
        help="also write everything forwarded to this .cbors capture (with several "
        "streams, one file each: FILE-STREAM.cbors; default $DUMP_PATH)",
    )
    controller_grace_option(p, settings)
    p.set_defaults(func=run_ingester)


def _add_worker(sub: SubParsers, settings: Settings) -> None:
    p = sub.add_parser("worker", help="assemble events and run a worker class")
    redis_options(p, settings)
    p.add_argument("--class", dest="cls", metavar="MODULE:CLASS", help="(default $WORKER_CLASS)")
    original_class_option(p, "--workerclass", "src.worker:TestWorker")
    p.add_argument(
        "--name", "-n", help="unique worker name (default $WORKER_NAME or worker-HOST-PID)"
    )
    p.add_argument("--tags", help="comma-separated tags (default $WORKER_TAGS or generic)")
    p.add_argument(
        "--advertise",
        help="address other hosts use to reach this worker's data socket (default "
        "127.0.0.1; started with -c or $WORKER_CLASS: this host's address)",
    )
    data_port_option(p)
    controller_grace_option(p, settings)
    p.set_defaults(func=run_worker)


def _add_reducer(sub: SubParsers, settings: Settings) -> None:
    p = sub.add_parser("reducer", help="run the reducer class and serve its publish data")
    redis_options(p, settings)
    p.add_argument("--class", dest="cls", metavar="MODULE:CLASS", help="(default $REDUCER_CLASS)")
    original_class_option(p, "--reducerclass", "src.reducer:TestReducer")
    p.add_argument(
        "--worker-class",
        default=None,
        metavar="MODULE:CLASS",
        help="worker class, so the reducer knows its parameters from the start",
    )
    p.add_argument(
        "--port",
        "-p",
        type=int,
        help="HTTP port of the results API (default 5001; started with -c or $REDUCER_CLASS: 5000)",
    )
    host_option(p, settings)
    p.add_argument(
        "--advertise",
        help="address workers use to reach the reducer's data socket (default: the host of "
        "$REDUCER_URL, else 127.0.0.1)",
    )
    data_port_option(p)
    controller_grace_option(p, settings)
    access_options(p)
    p.set_defaults(func=run_reducer)


def _add_up(sub: SubParsers) -> None:
    p = sub.add_parser(
        "up",
        help="start a whole pipeline locally (Redis, controller, ingesters, workers, reducer)",
        description="Start every component as a child process from one command line or a YAML "
        "file (-c); command-line values override the file. Without --redis-url a private "
        "redis-server is started. Ctrl-C stops everything.",
    )
    p.add_argument("-c", "--config", default=None, metavar="FILE.yaml")
    p.add_argument("--redis-url", default=None)
    p.add_argument("-w", "--worker-class", default=None, metavar="MODULE:CLASS")
    p.add_argument("-r", "--reducer-class", default=None, metavar="MODULE:CLASS")
    p.add_argument("--workers", type=int, default=None, metavar="N")
    p.add_argument("--tags", default=None, help="comma-separated worker tags")
    p.add_argument(
        "-i",
        "--ingester",
        action="append",
        default=None,
        metavar="STREAM[:PROTOCOL]=URL",
        help="an ingester for STREAM reading URL with PROTOCOL (default stins, a "
        "PUSH upstream); repeatable, e.g. -i pc:positioncap=tcp://panda:8889",
    )
    p.add_argument("--controller-port", type=int, default=None)
    p.add_argument(
        "--retry-lost",
        action="store_true",
        default=None,
        help="re-deliver the events of a worker that dies (controller --retry-lost)",
    )
    p.add_argument("--reducer-port", type=int, default=None)
    p.add_argument("--ready-file", default=None, help=argparse.SUPPRESS)
    access_options(p)
    p.set_defaults(func=run_up)


def _component_name(args: argparse.Namespace) -> str:
    """The name a process's log lines carry until one of its components takes over."""
    name = getattr(args, "name", None)
    if args.command == "worker":
        args.name = name = name or default_worker_name()
    elif args.command == "ingester" and not name and len(args.stream) == 1:
        name = f"{args.stream[0]}-ingester"
    elif args.command == "http_ingester":
        name = f"{name}-ingester"
    return name or args.command


def build_parser(settings: Optional[Settings] = None) -> argparse.ArgumentParser:
    """The whole command line; deployment tests parse the Helm chart's container args with it.

    ``settings`` gives the defaults that come from the environment (``--redis-url``,
    ``--host``); without it the environment is read now.
    """
    settings = settings if settings is not None else Settings()
    parser = argparse.ArgumentParser(
        prog="dranspose", description="Distributed streaming map-reduce for detector streams."
    )
    parser.add_argument("--version", action="version", version=f"dranspose {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_replay(sub)
    _add_source(sub)
    for add in (_add_controller, _add_ingester, _add_worker, _add_reducer, add_http_ingester):
        add(sub, settings)
    _add_up(sub)
    add_capture_tools(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    settings = Settings()  # the one read of the environment
    args = build_parser(settings).parse_args(argv)
    try:
        complete_from_environment(args, settings)  # the original's variables (cli/original.py)
    except SettingError as exc:
        print(f"dranspose {args.command}: error: {exc}", file=sys.stderr)
        return 2
    from dranspose.io.memory import keep_large_buffers
    from dranspose.runtime.logs import configure_logging

    configure_logging(_component_name(args), settings.log_level, settings.log_format)
    keep_large_buffers()
    from zmq import ZMQError  # e.g. a --data-port already in use

    from dranspose.core.coordination import ControllerBusyError
    from dranspose.core.parameters import ParameterError
    from dranspose.core.payload import PayloadError
    from dranspose.core.protocol import BuildMetaError
    from dranspose.io.capture import CaptureError

    try:
        return int(args.func(args, settings) or 0)
    except (
        CaptureError,
        ParameterError,
        PayloadError,
        BuildMetaError,
        OSError,
        ControllerBusyError,
        ConnectionError,
        ZMQError,
        SettingError,
    ) as exc:
        print(f"dranspose {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The ``dranspose`` command: one sub-command per component or tool."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from dranspose import __version__

STOP_GRACE_SECONDS = 3.0
"""After Ctrl-C, a service's components get this long to stop by themselves before cancellation."""

logger = logging.getLogger("dranspose.cli.main")


def _add_replay(sub: argparse._SubParsersAction) -> None:
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
    _access_options(p)
    p.set_defaults(func=_run_replay)


def _run_replay(args: argparse.Namespace) -> int:
    from dranspose.tools.replay import run_replay

    if not args.files and not args.source:
        print("dranspose replay: give capture files (-f) or a source class (-s)", file=sys.stderr)
        return 2
    if args.keep_alive and args.port is None:
        print("dranspose replay: --keep-alive needs --port", file=sys.stderr)
        return 2
    access = _apply_access(args)
    if args.port is not None:
        print(f"dranspose replay: {access}", file=sys.stderr)
    try:
        summary = run_replay(
            args.workerclass,
            args.reducerclass,
            zmq_files=args.files,
            source=args.source,
            parameter_file=args.parameters,
            port=args.port,
            nworkers=args.workers,
            broadcast_first=not args.no_broadcast_first,
            keep_alive=args.keep_alive,
            show_progress=False if args.no_progress else None,
            host=args.host,
        )
    except KeyboardInterrupt:
        print("dranspose replay: interrupted", file=sys.stderr)
        return 130
    print(summary.describe(), file=sys.stderr)
    for failure in summary.failures:
        print(f"  FAILED {failure.describe()}", file=sys.stderr)
    return 0 if summary.ok else 1


_SYNTHETIC_OPTIONS = (
    "shape",
    "dtype",
    "frames",
    "compression",
    "filename",
    "series",
    "pause",
    "seed",
)


def _add_source(sub: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=_run_source)


def _run_source(args: argparse.Namespace) -> int:
    from dranspose.tools.source import RawCaptureSource, SendStats, SourceError, StinsSource

    given = [name for name in _SYNTHETIC_OPTIONS if getattr(args, name) is not None]
    if args.replay is not None and given:
        options = ", ".join(f"--{name}" for name in given)
        print(f"dranspose source: {options} do not apply to --replay", file=sys.stderr)
        return 2
    if args.replay is None and args.stream is not None:
        print("dranspose source: --stream needs --replay", file=sys.stderr)
        return 2
    if args.replay is None and args.protocol is not None:
        print(
            "dranspose source: --protocol needs --replay (generated series are STINS)",
            file=sys.stderr,
        )
        return 2
    sock_type = "PUB" if args.pub else None if args.protocol is not None else "PUSH"
    source = None
    try:
        if args.replay is not None:
            source = RawCaptureSource(
                args.bind,
                args.replay,
                sock_type=sock_type,
                rate=args.rate,
                stream=args.stream,
                protocol=args.protocol,
                subscribers=args.subscribers,
            )
        elif args.subscribers is not None and not args.pub:
            raise ValueError("--subscribers needs --pub")
        else:
            source = StinsSource(
                args.bind,
                shape=args.shape if args.shape is not None else (10, 10),
                dtype=args.dtype if args.dtype is not None else "uint16",
                frames=args.frames if args.frames is not None else 10,
                compression=args.compression or "none",
                filename=args.filename or "",
                rate=args.rate,
                seed=args.seed if args.seed is not None else 0,
                sock_type=sock_type,
                n_series=args.series if args.series is not None else 1,
                pause=args.pause if args.pause is not None else 0.0,
                subscribers=args.subscribers or 0,
            )
        source.run()
    except KeyboardInterrupt:
        pass  # run() has stopped the source; the summary says what was sent
    except (ValueError, SourceError) as exc:
        print(f"dranspose source: error: {exc}", file=sys.stderr)
        if source is not None and source.endpoint is not None:  # failed part way (bad capture)
            print(f"dranspose source: {source.stats.describe()}", file=sys.stderr)
        return 2
    stats = source.stats if source is not None else SendStats()
    print(f"dranspose source: {stats.describe()}", file=sys.stderr)
    return 0


def _redis_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for coordination (default $REDIS_URL or redis://127.0.0.1:6379/0)",
    )
    p.add_argument("--prefix", default="dranspose", help="Redis key prefix of this pipeline")


def _access_options(p: argparse.ArgumentParser) -> None:
    """The bearer token of the HTTP API (dranspose/http/auth.py, docs/security.md)."""
    p.add_argument(
        "--token",
        default=None,
        help="require 'Authorization: Bearer TOKEN' on mutating requests (default "
        "$DRANSPOSE_TOKEN; prefer the variable: options are visible in 'ps')",
    )
    p.add_argument(
        "--protect-reads",
        action="store_true",
        default=None,
        help="require the token on reads too, except /healthz (default $DRANSPOSE_TOKEN_READS)",
    )


def _apply_access(args: argparse.Namespace) -> str:
    """Put --token/--protect-reads into this process's environment, where the HTTP apps (and
    the children of 'dranspose up') read them; return the start-up line that describes them."""
    from dranspose.http.auth import PROTECT_READS_ENV, TOKEN_ENV, AccessPolicy

    if args.token is not None:
        os.environ[TOKEN_ENV] = args.token
    if args.protect_reads:
        os.environ[PROTECT_READS_ENV] = "1"
    return AccessPolicy.from_env().describe()


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


HOST_ENV = "DRANSPOSE_HOST"
"""Default listen address of the controller's and reducer's HTTP APIs; the image sets 0.0.0.0."""


def _host_option(p: argparse.ArgumentParser) -> None:
    """Loopback unless told otherwise: on a laptop the API is not offered to the whole network;
    in a container (the image sets $DRANSPOSE_HOST) loopback would be unreachable."""
    default = os.environ.get(HOST_ENV) or "127.0.0.1"
    p.add_argument(
        "--host",
        default=default,
        help=f"address the HTTP API listens on (default ${HOST_ENV} or 127.0.0.1; "
        "0.0.0.0 for every interface)",
    )


def data_bind(advertise: str, port: int) -> str:
    """The ZMQ data socket's bind address: a socket advertised at a loopback address is only
    reachable there anyway, so it listens on loopback alone instead of every interface."""
    loopback = advertise == "localhost" or advertise.startswith("127.")
    return f"tcp://127.0.0.1:{port}" if loopback else f"tcp://*:{port}"


def _data_port_option(p: argparse.ArgumentParser) -> None:
    """A fixed data-plane port lets a firewall or a Kubernetes pod spec name it."""
    p.add_argument(
        "--data-port",
        type=_port,
        default=0,
        metavar="PORT",
        help="TCP port of the ZMQ data socket (default 0: any free port; the "
        "registry tells the senders which)",
    )


def _add_services(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("controller", help="run the controller (REST API, trigger map, progress)")
    _redis_option(p)
    _host_option(p)
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
    _access_options(p)
    p.set_defaults(func=_run_controller)

    p = sub.add_parser(
        "ingester",
        help="read upstream streams and forward their frames to workers",
        description="Read one upstream per stream; repeat --stream/--upstream pairs to serve "
        "several streams from one process.",
    )
    _redis_option(p)
    p.add_argument(
        "--stream",
        required=True,
        action="append",
        help="stream name used in trigger maps (repeatable)",
    )
    p.add_argument(
        "--upstream",
        required=True,
        action="append",
        help="upstream address, one per --stream: the detector's ZMQ socket "
        "(tcp://det:9999), the TCP server of a TCP protocol (tcp://panda:8889), or "
        "for an HTTP protocol the address to listen on (http://0.0.0.0:5010)",
    )
    p.add_argument(
        "--name", default=None, help="component name (default STREAM-ingester; single stream only)"
    )
    p.add_argument(
        "--protocol",
        default="stins",
        help="upstream protocol (default stins; see 'dranspose protocols')",
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
        "streams, one file each: FILE-STREAM.cbors)",
    )
    p.set_defaults(func=_run_ingester)

    p = sub.add_parser("worker", help="assemble events and run a worker class")
    _redis_option(p)
    p.add_argument("--class", dest="cls", required=True, metavar="MODULE:CLASS")
    p.add_argument("--name", default=None, help="unique worker name (default worker-HOST-PID)")
    p.add_argument("--tags", default="generic", help="comma-separated tags (default generic)")
    p.add_argument(
        "--advertise",
        default="127.0.0.1",
        help="address other hosts use to reach this worker's data socket",
    )
    _data_port_option(p)
    p.set_defaults(func=_run_worker)

    p = sub.add_parser("reducer", help="run the reducer class and serve its publish data")
    _redis_option(p)
    p.add_argument("--class", dest="cls", required=True, metavar="MODULE:CLASS")
    p.add_argument(
        "--worker-class",
        default=None,
        metavar="MODULE:CLASS",
        help="worker class, so the reducer knows its parameters from the start",
    )
    p.add_argument("--port", type=int, default=5001, help="HTTP port of the results API")
    _host_option(p)
    p.add_argument(
        "--advertise",
        default="127.0.0.1",
        help="address workers use to reach the reducer's data socket",
    )
    _data_port_option(p)
    _access_options(p)
    p.set_defaults(func=_run_reducer)


def _add_up(sub: argparse._SubParsersAction) -> None:
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
    _access_options(p)
    p.set_defaults(func=_run_up)


def _run_up(args: argparse.Namespace) -> int:
    from dranspose.tools.up import PipelineConfigError, load_config, run_pipeline

    ingesters = None
    if args.ingester:
        ingesters = []
        for spec in args.ingester:
            name, sep, url = spec.partition("=")
            if not sep:
                print(
                    f"dranspose up: --ingester {spec!r}: expected STREAM[:PROTOCOL]=URL",
                    file=sys.stderr,
                )
                return 2
            stream, _, protocol = name.partition(":")
            ingesters.append({"stream": stream, "upstream": url, "protocol": protocol or "stins"})
    overrides = {
        "redis_url": args.redis_url,
        "workers.class": args.worker_class,
        "workers.count": args.workers,
        "workers.tags": args.tags.split(",") if args.tags else None,
        "reducer.class": args.reducer_class,
        "ingesters": ingesters,
        "controller.port": args.controller_port,
        "reducer.port": args.reducer_port,
        "controller.retry_lost": args.retry_lost,
    }
    try:
        config = load_config(args.config, overrides)
    except PipelineConfigError as exc:
        print(f"dranspose up: {exc}", file=sys.stderr)
        return 2
    # the children inherit the environment: the token never appears on their command lines
    print(f"dranspose up: {_apply_access(args)}", file=sys.stderr)
    return run_pipeline(config, ready_file=args.ready_file)


def _add_capture_tools(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "capture",
        help="record raw upstream messages to a .cbors file",
        description="Record every upstream message (the frames of a ZMQ "
        "message, one message cut from a TCP stream, one HTTP post) as one CBOR "
        "item, e.g. at the beamline, to replay or test ingesters offline later. "
        "The transport is the protocol's, as for an ingester. Ctrl-C stops "
        "cleanly.",
    )
    p.add_argument(
        "--upstream",
        required=True,
        help="address as for 'dranspose ingester' (an HTTP protocol listens on it)",
    )
    p.add_argument(
        "--protocol",
        default="stins",
        help="selects the transport: PULL, SUB, TCP or HTTP (default stins)",
    )
    p.add_argument("--sub", action="store_true", help="force a SUB socket")
    p.add_argument("-o", "--output", required=True, metavar="FILE.cbors")
    p.add_argument("--count", type=int, default=None, help="stop after this many messages")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_run_capture)

    p = sub.add_parser(
        "convert",
        help="turn a raw capture into an ingester dump for replay",
        description="Number the first series of a raw capture as an ingester "
        "would (start = event 0) and write an ingester dump for 'dranspose replay'.",
    )
    p.add_argument("raw", metavar="RAW.cbors")
    p.add_argument("-o", "--output", required=True, metavar="DUMP.cbors")
    p.add_argument("--protocol", default="stins")
    p.add_argument("--stream", required=True, help="stream name the payload expects")
    p.set_defaults(func=_run_convert)

    p = sub.add_parser("protocols", help="list the upstream protocols ingesters understand")
    p.set_defaults(func=_run_protocols)


def _run_protocols(args: argparse.Namespace) -> int:
    from dranspose.protocols.registry import PROTOCOLS

    print(f"{'NAME':<14} {'READ':<5} {'TYPE':<13} {'COUNTER':<19} DESCRIPTION")
    for proto in sorted(PROTOCOLS.values(), key=lambda p: p.name):
        counter = proto.counter.name if proto.counter is not None else "-"
        print(
            f"{proto.name:<14} {proto.socket:<5} {proto.typ:<13} {counter:<19} {proto.description}"
        )
    print(
        "\nREAD: the ingester's transport (pull/sub: ZMQ socket, tcp: client, http: server). "
        "COUNTER: the message\ncounter a SUB ingester checks to count messages lost "
        "upstream ('dranspose ingester --sub')."
    )
    return 0


def _run_capture(args: argparse.Namespace) -> int:
    from dranspose.protocols.registry import get_protocol
    from dranspose.tools.capture import capture_upstream

    try:
        protocol = get_protocol(args.protocol)
    except KeyError as exc:
        print(f"dranspose capture: {exc.args[0]}", file=sys.stderr)
        return 2
    show = not args.no_progress and sys.stderr.isatty()
    try:
        summary = capture_upstream(
            protocol,
            args.upstream,
            args.output,
            count=args.count,
            sub=True if args.sub else None,
            progress=show,
        )
    except ValueError as exc:
        print(f"dranspose capture: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the capture loop took over Ctrl-C: nothing recorded
        print("dranspose capture: interrupted before recording started", file=sys.stderr)
        return 130
    print(f"{chr(10) if show else ''}dranspose capture: {summary}", file=sys.stderr)
    return 0


def _run_convert(args: argparse.Namespace) -> int:
    from dranspose.core.event import InternalWorkerMessage, StreamData
    from dranspose.io.capture import CaptureWriter, read_raw_capture
    from dranspose.protocols.registry import get_protocol, number_series

    try:
        protocol = get_protocol(args.protocol)
    except KeyError as exc:
        print(f"dranspose convert: {exc.args[0]}", file=sys.stderr)
        return 2
    written = 0
    with CaptureWriter(args.output) as out:
        for number, frames in number_series(protocol, read_raw_capture(args.raw)):
            out.write(
                InternalWorkerMessage(
                    event_number=number,
                    streams={args.stream: StreamData(typ=protocol.typ, frames=list(frames))},
                )
            )
            written += 1
    print(f"dranspose convert: {written} events -> {args.output}", file=sys.stderr)
    if written == 0:
        print(
            f"dranspose convert: no series start found for protocol {protocol.name!r}",
            file=sys.stderr,
        )
        return 1
    return 0


def _serve(*component_factories) -> int:  # type: ignore[no-untyped-def]
    """Run components in one event loop until SIGINT/SIGTERM."""
    import asyncio
    import signal

    async def main() -> None:
        components = [factory() for factory in component_factories]
        loop = asyncio.get_running_loop()
        running = asyncio.gather(*(c.run() for c in components))
        signals = 0

        def on_signal() -> None:
            # The first signal asks every component to stop; one in the middle of a scan may be
            # waiting for frames that never come, so after a grace period (or at a second
            # signal) its tasks are cancelled, which still runs their cleanup (unregistering).
            nonlocal signals
            signals += 1
            for component in components:
                component.stop()
            if signals == 1:
                loop.call_later(STOP_GRACE_SECONDS, running.cancel)
            else:
                running.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            await running
        except asyncio.CancelledError:
            if not signals:
                raise
        finally:
            for component in components:
                await component.store.close()

    return _run_async(main)


def _run_async(main) -> int:  # type: ignore[no-untyped-def]
    """Run a service's event loop; Ctrl-C is a normal way to stop it."""
    import asyncio

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0


def _run_controller(args: argparse.Namespace) -> int:
    import uvicorn

    from dranspose.core.parameters import read_parameter_file
    from dranspose.io.store import Store
    from dranspose.runtime.controller import Controller

    # a bad file stops the controller before it touches Redis
    initial = read_parameter_file(args.parameters) if args.parameters else None
    access = _apply_access(args)  # before the app is built: it reads the environment

    async def main() -> None:
        controller = Controller(Store(args.redis_url, args.prefix), retry_lost=args.retry_lost)
        # refuse before serving anything if another one is active
        await controller.acquire(wait=args.takeover_wait)
        if initial is not None:
            version = await controller.set_initial_parameters(initial)
            print(
                f"dranspose controller: {len(initial)} parameter(s) from {args.parameters} "
                f"set ({', '.join(sorted(initial)) or 'none'}; version {version})",
                file=sys.stderr,
            )
        # open log streams (server-sent events) must not hold up Ctrl-C for ever
        config = uvicorn.Config(
            controller.app,
            host=args.host,
            port=args.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=3,
        )
        print(
            f"dranspose controller: http://{args.host}:{args.port}/ (Redis {args.redis_url}); "
            f"{access}",
            file=sys.stderr,
        )
        await uvicorn.Server(config).serve()

    return _run_async(main)


def _run_ingester(args: argparse.Namespace) -> int:
    import zmq

    from dranspose.io.store import Store
    from dranspose.protocols.registry import get_protocol
    from dranspose.runtime.ingester import Ingester

    try:
        protocol = get_protocol(args.protocol)
    except KeyError as exc:
        print(f"dranspose ingester: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.sub and protocol.socket in ("tcp", "http"):
        print(
            f"dranspose ingester: --sub: protocol {protocol.name!r} is read over "
            f"{protocol.socket.upper()}, not ZMQ",
            file=sys.stderr,
        )
        return 2
    if args.backlog is not None and args.backlog < 1:
        print("dranspose ingester: --backlog must be at least 1", file=sys.stderr)
        return 2
    if len(args.stream) != len(args.upstream):
        print(
            f"dranspose ingester: {len(args.stream)} --stream but {len(args.upstream)} "
            "--upstream; give one upstream per stream",
            file=sys.stderr,
        )
        return 2
    if args.name and len(args.stream) > 1:
        print("dranspose ingester: --name needs a single stream", file=sys.stderr)
        return 2

    def dump_for(stream: str) -> Optional[str]:
        if not args.dump or len(args.stream) == 1:
            return args.dump
        stem, dot, ext = args.dump.partition(".")
        return f"{stem}-{stream}{dot}{ext}"

    backlog = {"backlog": args.backlog} if args.backlog is not None else {}
    try:
        return _serve(
            *[
                (
                    lambda stream=stream, upstream=upstream: Ingester(
                        Store(args.redis_url, args.prefix),
                        stream,
                        upstream,
                        name=args.name,
                        protocol=args.protocol,
                        dump=dump_for(stream),
                        sock_type=zmq.SUB if args.sub else None,
                        **backlog,
                    )
                )
                for stream, upstream in zip(args.stream, args.upstream)
            ]
        )
    except ValueError as exc:
        print(f"dranspose ingester: error: {exc}", file=sys.stderr)
        return 2


def _run_worker(args: argparse.Namespace) -> int:
    import socket

    from dranspose.io.store import Store
    from dranspose.runtime.worker import Worker

    name = args.name or f"worker-{socket.gethostname()}-{os.getpid()}"  # set by main already
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    return _serve(
        lambda: Worker(
            Store(args.redis_url, args.prefix),
            args.cls,
            name=name,
            tags=tags,
            advertise_host=args.advertise,
            bind=data_bind(args.advertise, args.data_port),
        )
    )


def _run_reducer(args: argparse.Namespace) -> int:
    from dranspose.io.store import Store
    from dranspose.runtime.reducer import Reducer

    print(f"dranspose reducer: {_apply_access(args)}", file=sys.stderr)
    return _serve(
        lambda: Reducer(
            Store(args.redis_url, args.prefix),
            args.cls,
            worker_class=args.worker_class,
            advertise_host=args.advertise,
            http_port=args.port,
            http_host=args.host,
            bind=data_bind(args.advertise, args.data_port),
        )
    )


def _component_name(args: argparse.Namespace) -> str:
    """The name a process's log lines carry until one of its components takes over."""
    name = getattr(args, "name", None)
    if args.command == "worker":
        import socket

        args.name = name = name or f"worker-{socket.gethostname()}-{os.getpid()}"
    elif args.command == "ingester" and not name and len(args.stream) == 1:
        name = f"{args.stream[0]}-ingester"
    return name or args.command


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; deployment tests parse the Helm chart's container args with it."""
    parser = argparse.ArgumentParser(
        prog="dranspose", description="Distributed streaming map-reduce for detector streams."
    )
    parser.add_argument("--version", action="version", version=f"dranspose {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_replay(sub)
    _add_source(sub)
    _add_services(sub)
    _add_up(sub)
    _add_capture_tools(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from dranspose.io.memory import keep_large_buffers
    from dranspose.runtime.logs import configure_logging

    configure_logging(_component_name(args))
    keep_large_buffers()
    from zmq import ZMQError  # e.g. a --data-port already in use

    from dranspose.core.coordination import ControllerBusy
    from dranspose.core.parameters import ParameterError
    from dranspose.core.payload import PayloadError
    from dranspose.core.protocol import BuildMetaError
    from dranspose.io.capture import CaptureError

    try:
        return int(args.func(args) or 0)
    except (
        CaptureError,
        ParameterError,
        PayloadError,
        BuildMetaError,
        OSError,
        ControllerBusy,
        ConnectionError,
        ZMQError,
    ) as exc:
        print(f"dranspose {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

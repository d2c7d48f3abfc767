"""What ``dranspose controller|ingester|worker|reducer`` do: build the components and serve them.

Each service runs its components in one event loop until SIGINT/SIGTERM. Everything a component
needs from the environment (the access policy, the build provenance) comes from the command's
:class:`~dranspose.cli.settings.Settings`, passed explicitly to its constructor and its app's
factory. The controller's and the reducer's HTTP apps are served here, next to the service
(``dranspose.tools.serving``): the services themselves know nothing of HTTP servers.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Optional, Sequence

from dranspose.cli.settings import Settings

if TYPE_CHECKING:
    from dranspose.runtime.component import Component

STOP_GRACE_SECONDS = 3.0
"""After Ctrl-C, a service's components get this long to stop by themselves before cancellation."""
SETTLE_SECONDS = 2.0
"""A service's heap is frozen again this long after its loop started (freeze_startup_heap)."""


def data_bind(advertise: str, port: int) -> str:
    """The ZMQ data socket's bind address: a socket advertised at a loopback address is only
    reachable there anyway, so it listens on loopback alone instead of every interface."""
    loopback = advertise == "localhost" or advertise.startswith("127.")
    return f"tcp://127.0.0.1:{port}" if loopback else f"tcp://*:{port}"


def default_worker_name() -> str:
    """Unique on one host and across hosts, without configuration."""
    return f"worker-{socket.gethostname()}-{os.getpid()}"


def serve(component_factories: Sequence[Callable[[], Component]]) -> int:
    """Run components in one event loop until SIGINT/SIGTERM."""

    async def main() -> None:
        await run_components([factory() for factory in component_factories])

    return run_async(main)


async def run_components(components: Sequence[Component]) -> None:
    """Run ``components`` in this event loop until SIGINT/SIGTERM, then close their stores."""
    loop = asyncio.get_running_loop()
    running = asyncio.gather(*(c.serve() for c in components))
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


def run_async(main: Callable[[], Coroutine[Any, Any, None]]) -> int:
    """Run a service's event loop; Ctrl-C is a normal way to stop it."""
    freeze_startup_heap()  # the imports

    async def settled() -> None:
        # and, once it has started, what it built (its web app, its payload)
        asyncio.get_running_loop().call_later(SETTLE_SECONDS, freeze_startup_heap)
        await main()

    try:
        asyncio.run(settled())
    except KeyboardInterrupt:
        pass
    return 0


def freeze_startup_heap() -> None:
    """Exempt what the process holds once started (modules, classes, its web app) from the
    cyclic garbage collector's passes (``gc.freeze``), once before the loop and once
    SETTLE_SECONDS after it started.

    A service imports FastAPI, pydantic, numpy, its payload: some 100,000 objects that live as
    long as the process. Every full collection walked all of them, and on a small host that took
    40-90 ms in the middle of a scan, holding up every event in flight (the worst latencies at
    moderate rates, bench/throughput.py --paced). Frozen objects are still freed by reference
    counting; only one that later becomes garbage inside a reference cycle stays: a bounded,
    one-time amount (garbage already there is collected just before).
    """
    gc.collect()
    gc.freeze()


def run_controller(args: argparse.Namespace, settings: Settings) -> int:
    from dranspose.core.parameters import read_parameter_file
    from dranspose.http.controller_api import create_app
    from dranspose.io.store import Store
    from dranspose.runtime.controller import Controller
    from dranspose.tools.serving import server

    # a bad file stops the controller before it touches Redis
    initial = read_parameter_file(args.parameters) if args.parameters else None
    access = settings.access(args.token, args.protect_reads)
    build_meta = settings.build_meta()

    async def main() -> None:
        controller = Controller(
            Store(args.redis_url, args.prefix), retry_lost=args.retry_lost, build_meta=build_meta
        )
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
        http = server(
            create_app(controller, access, lifespan=lambda app: controller.running()),
            args.host,
            args.port,
            access_log=False,
            timeout_graceful_shutdown=3,
        )
        print(
            f"dranspose controller: http://{args.host}:{args.port}/ (Redis {args.redis_url}); "
            f"{access.describe()}",
            file=sys.stderr,
        )
        await http.serve()

    return run_async(main)


def _ingester_mistake(args: argparse.Namespace) -> Optional[str]:
    """What is wrong with an ingester command line that argparse cannot see, if anything."""
    from dranspose.protocols.registry import get_protocol

    try:
        protocol = get_protocol(args.protocol)
    except KeyError as exc:
        return str(exc.args[0])
    if args.sub and protocol.socket in ("tcp", "http"):
        return f"--sub: protocol {protocol.name!r} is read over {protocol.socket.upper()}, not ZMQ"
    if args.backlog is not None and args.backlog < 1:
        return "--backlog must be at least 1"
    if len(args.stream) != len(args.upstream):
        return (
            f"{len(args.stream)} --stream but {len(args.upstream)} --upstream; give one "
            "upstream per stream"
        )
    if args.name and len(args.stream) > 1:
        return "--name needs a single stream"
    return None


def run_ingester(args: argparse.Namespace, settings: Settings) -> int:
    import zmq

    from dranspose.io.store import Store
    from dranspose.runtime.ingester import Ingester

    mistake = _ingester_mistake(args)
    if mistake is not None:
        print(f"dranspose ingester: {mistake}", file=sys.stderr)
        return 2
    build_meta = settings.build_meta()

    def dump_for(stream: str) -> Optional[str]:
        if not args.dump or len(args.stream) == 1:
            return args.dump
        stem, dot, ext = args.dump.partition(".")
        return f"{stem}-{stream}{dot}{ext}"

    def factory(stream: str, upstream: str) -> Callable[[], Component]:
        backlog = {"backlog": args.backlog} if args.backlog is not None else {}
        return lambda: Ingester(
            Store(args.redis_url, args.prefix),
            stream,
            upstream,
            name=args.name,
            protocol=args.protocol,
            dump=dump_for(stream),
            sock_type=zmq.SUB if args.sub else None,
            build_meta=build_meta,
            controller_grace=args.controller_grace,
            **backlog,
        )

    try:
        return serve([factory(s, u) for s, u in zip(args.stream, args.upstream)])
    except ValueError as exc:
        print(f"dranspose ingester: error: {exc}", file=sys.stderr)
        return 2


def run_worker(args: argparse.Namespace, settings: Settings) -> int:
    from dranspose.io.store import Store
    from dranspose.runtime.worker import Worker

    name = args.name or default_worker_name()  # set by main already
    tags = list(args.tags)  # a list since cli/original.py completed it
    build_meta = settings.build_meta()
    return serve(
        [
            lambda: Worker(
                Store(args.redis_url, args.prefix),
                args.cls,
                name=name,
                tags=tags,
                advertise_host=args.advertise,
                bind=data_bind(args.advertise, args.data_port),
                build_meta=build_meta,
                controller_grace=args.controller_grace,
            )
        ]
    )


def run_reducer(args: argparse.Namespace, settings: Settings) -> int:
    from dranspose.http.reducer_api import create_app
    from dranspose.io.store import Store
    from dranspose.runtime.reducer import Reducer
    from dranspose.tools.serving import served

    access = settings.access(args.token, args.protect_reads)
    print(f"dranspose reducer: {access.describe()}", file=sys.stderr)
    build_meta = settings.build_meta()

    async def main() -> None:
        reducer = Reducer(
            Store(args.redis_url, args.prefix),
            args.cls,
            worker_class=args.worker_class,
            advertise_host=args.advertise,
            http_port=args.port,
            http_host=args.host,
            bind=data_bind(args.advertise, args.data_port),
            build_meta=build_meta,
            controller_grace=args.controller_grace,
        )
        if args.port is None:
            await run_components([reducer])
            return
        async with served(create_app(reducer, access), args.host, args.port):
            await run_components([reducer])

    return run_async(main)

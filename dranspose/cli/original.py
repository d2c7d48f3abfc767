"""The original dranspose's command lines and variables, accepted beside ours.

Facilities deploy the original (0.2.0) with its Helm chart; the same container commands and
environment variables must start our components unchanged. Our own forms stay as they are; this
module adds what the original's forms need that argparse alone cannot express:

- completing a parsed command line from the original's variables (``WORKER_CLASS``,
  ``REDUCER_URL``, ``INGESTER_STREAMS``, ...) where no option was given: an option always wins;
- mapping the original's ingester classes (``-c ZmqPullSingleIngester``) to our protocol and
  transport;
- the defaults the original's deployment relies on, which differ from ours: a reducer started the
  original's way serves on port 5000, and a worker started the original's way advertises this
  host's address (the original's chart gives workers no address; ingesters must reach them);
- ``dranspose http_ingester`` (the original's Sardana HTTP ingester), run as our ingester.

Every mistake raises :class:`SettingError` with a message naming the option or variable and what
was expected; the command prints it and exits with status 2. The environment is never written:
what is found here is put into the parsed arguments, which the services read.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import NamedTuple, Optional
from urllib.parse import urlsplit

from dranspose.cli.options import SubParsers, controller_grace_option, redis_options
from dranspose.cli.settings import Settings

ORIGINAL_REDUCER_PORT = 5000
"""The original's reducer serves its API on 5000 (its chart's Service targets that port)."""
OUR_REDUCER_PORT = 5001
SARDANA_APP = "dranspose.ingesters.http_sardana:app"
"""The one ASGI app the original's ``http_ingester -c`` was given: its Sardana recorder server."""


TAGS_EXAMPLE = '["generic", "fast"]'


class SettingError(ValueError):
    """A command line or variable of the original's form that cannot be used; says which."""


class IngesterClass(NamedTuple):
    protocol: str
    """our protocol (``dranspose protocols``)"""
    transport: str
    """what the original's class read with: ``pull``, ``sub`` or ``tcp``"""


INGESTER_CLASSES: dict[str, IngesterClass] = {
    "ZmqPullSingleIngester": IngesterClass("stins", "pull"),
    "ZmqPullEigerLegacyIngester": IngesterClass("eiger_legacy", "pull"),
    "ZmqSubContrastIngester": IngesterClass("contrast", "sub"),
    "ZmqSubXspressIngester": IngesterClass("xspress", "sub"),
    "ZmqSubPCAPIngester": IngesterClass("pcap", "sub"),
    "ZmqSubLecroyIngester": IngesterClass("lecroy", "sub"),
    "ZmqSubAlbaemIngester": IngesterClass("albaem", "sub"),
    "TcpPcapIngester": IngesterClass("positioncap", "tcp"),
}
"""The original's ingester classes (``dranspose ingester -c CLASS``) and what they read."""


# -- values of variables ---------------------------------------------------------------------


def string_list(variable: str, value: str, what: str, example: str) -> list[str]:
    """A list variable: the original's JSON list (``["a", "b"]``, how pydantic-settings reads a
    list field); a value that does not look like JSON is our comma-separated form."""
    text = value.strip()
    if not text.startswith(("[", "{", '"')):
        items = [item.strip() for item in text.split(",") if item.strip()]
    else:
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            raise SettingError(
                f"{variable}={value!r}: expected a JSON list of {what}, e.g. {example} "
                "(or a comma-separated list)"
            )
    if not items:
        raise SettingError(f"{variable}={value!r}: expected at least one of the {what}")
    return items


def tcp_address(variable: str, value: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` (the original's ``ZmqUrl``, with the port it binds) as host and port."""
    expected = f"{variable}={value!r}: expected tcp://HOST:PORT"
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as exc:
        raise SettingError(f"{expected} ({exc})") from None
    if parts.scheme != "tcp" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise SettingError(f"{expected}, e.g. tcp://dranspose-reducer:10010")
    return parts.hostname, port


def host_address() -> str:
    """This host's own address, as other hosts reach it: in a Kubernetes pod, the pod's IP."""
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        print(
            "dranspose worker: this host's name does not resolve; advertising 127.0.0.1 "
            "(give --advertise)",
            file=sys.stderr,
        )
        return "127.0.0.1"


def _class(command: str, ours: Optional[str], original: Optional[str], env: Optional[str]) -> str:
    """The payload class from ``--class``, the original's ``-c`` or the variable, in that order."""
    if ours and original:
        raise SettingError(f"give the class once: --class {ours} or -c {original}, not both")
    cls = ours or original or env
    if not cls:
        variable = f"${command.upper()}_CLASS"
        raise SettingError(
            f"a {command} class is needed: --class MODULE:CLASS (or the original's -c, or "
            f"{variable})"
        )
    return cls


# -- completing each command --------------------------------------------------------------------


def complete_worker(args: argparse.Namespace, settings: Settings) -> None:
    original_form = not args.cls
    args.cls = _class("worker", args.cls, args.workerclass, settings.worker_class)
    args.name = args.name or settings.worker_name  # else main gives our default name
    if args.tags is not None:
        args.tags = string_list("--tags", args.tags, "tags", TAGS_EXAMPLE)
    elif settings.worker_tags:
        args.tags = string_list("WORKER_TAGS", settings.worker_tags, "tags", TAGS_EXAMPLE)
    else:
        args.tags = ["generic"]
    if args.advertise is None:
        args.advertise = host_address() if original_form else "127.0.0.1"
    if args.data_port is None:
        args.data_port = 0


def complete_reducer(args: argparse.Namespace, settings: Settings) -> None:
    original_form = not args.cls
    args.cls = _class("reducer", args.cls, args.reducerclass, settings.reducer_class)
    if args.port is None:
        args.port = ORIGINAL_REDUCER_PORT if original_form else OUR_REDUCER_PORT
    host, port = (None, None)
    if settings.reducer_url:
        host, port = tcp_address("REDUCER_URL", settings.reducer_url)
    args.advertise = args.advertise or host or "127.0.0.1"
    if args.data_port is None:
        args.data_port = port if port is not None else 0


def complete_ingester(args: argparse.Namespace, settings: Settings) -> None:
    if args.ingesterclass is not None:
        if args.protocol is not None:
            raise SettingError("give --protocol or the original's -c/--ingesterclass, not both")
        known = INGESTER_CLASSES.get(args.ingesterclass)
        if known is None:
            raise SettingError(
                f"unknown ingester class {args.ingesterclass!r}; known: "
                f"{', '.join(sorted(INGESTER_CLASSES))} (Sardana: 'dranspose http_ingester -c "
                f"{SARDANA_APP}'; or --protocol, see 'dranspose protocols')"
            )
        args.protocol, args.sub = known.protocol, known.transport == "sub"
    args.protocol = args.protocol or "stins"
    if args.stream is None:
        if args.name:  # the original's -n/--name is the stream; the name follows from it
            args.stream, args.name = [args.name], settings.ingester_name
        elif settings.ingester_streams:
            args.stream = string_list(
                "INGESTER_STREAMS", settings.ingester_streams, "streams", '["eiger"]'
            )
            args.name = settings.ingester_name
        else:
            raise SettingError(
                "a stream is needed: --stream NAME (or the original's -n/--name, or "
                "$INGESTER_STREAMS)"
            )
    elif not args.name:
        args.name = settings.ingester_name
    if args.upstream is None:
        if not settings.upstream_url:
            raise SettingError(
                "an upstream is needed: --upstream URL (or the original's -u/--upstream_url, "
                "or $UPSTREAM_URL)"
            )
        args.upstream = [settings.upstream_url]
        if len(args.stream) != 1:
            raise SettingError(
                f"{len(args.stream)} streams but one $UPSTREAM_URL; give one --upstream per "
                "--stream"
            )
    args.dump = args.dump or settings.dump_path
    if settings.ingester_url:
        # checked like the original does; ours listens nowhere: it sends to the workers
        tcp_address("INGESTER_URL", settings.ingester_url)


COMPLETIONS = {
    "worker": complete_worker,
    "reducer": complete_reducer,
    "ingester": complete_ingester,
}


def complete_from_environment(args: argparse.Namespace, settings: Settings) -> None:
    """Fill what the command line left open from the original's variables (see module doc)."""
    complete = COMPLETIONS.get(args.command)
    if complete is not None:
        complete(args, settings)


# -- the parser's additions ---------------------------------------------------------------------


def original_class_option(p: argparse.ArgumentParser, long: str, example: str) -> None:
    p.add_argument(
        "-c",
        long,
        default=None,
        metavar="MODULE:CLASS",
        help=f"the original's form of --class, e.g. {example}; without --class the original's "
        "defaults apply (see docs/deployment.md)",
    )


def add_http_ingester(sub: SubParsers, settings: Settings) -> None:
    p = sub.add_parser(
        "http_ingester",
        help="the original's Sardana HTTP ingester: an ingester with --protocol sardana",
        description="The original's command for its Sardana recorder ingester, run as "
        "'dranspose ingester --protocol sardana --upstream http://HOST:PORT'. Listens on every "
        "interface by default, as the original did.",
    )
    redis_options(p, settings)
    p.add_argument("-c", "--ingesterapp", required=True, help=f"must be {SARDANA_APP}")
    p.add_argument("-n", "--name", required=True, help="the stream name")
    p.add_argument("-p", "--port", type=int, default=5000, help="HTTP port (default 5000)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    controller_grace_option(p, settings)
    p.set_defaults(func=run_http_ingester)


def run_http_ingester(args: argparse.Namespace, settings: Settings) -> int:
    from dranspose.cli.services import run_ingester

    if args.ingesterapp != SARDANA_APP:
        raise SettingError(f"unknown ingester app {args.ingesterapp!r}; known: {SARDANA_APP}")
    ingester = argparse.Namespace(
        command="ingester",
        redis_url=args.redis_url,
        prefix=args.prefix,
        stream=[args.name],
        upstream=[f"http://{args.host}:{args.port}"],
        name=settings.ingester_name,
        protocol="sardana",
        ingesterclass=None,
        sub=False,
        backlog=None,
        dump=None,
        controller_grace=args.controller_grace,
    )
    complete_ingester(ingester, settings)
    return run_ingester(ingester, settings)

"""Options several sub-commands share, so each reads and is explained the same way everywhere.

Defaults that come from the environment are taken from the :class:`~dranspose.cli.settings.Settings`
the parser is built with; the help texts name the variables, never their values (the token
must not appear in ``--help``, and the generated docs must not depend on the builder's shell).
"""

from __future__ import annotations

import argparse

from dranspose.cli.settings import DEFAULT_REDIS_URL, Settings

SubParsers = argparse._SubParsersAction
"""What ``add_subparsers()`` returns; the sub-command modules add their parsers to it."""


def redis_options(p: argparse.ArgumentParser, settings: Settings) -> None:
    p.add_argument(
        "--redis-url",
        default=settings.redis_url,
        help=f"Redis for coordination (default $REDIS_URL or {DEFAULT_REDIS_URL})",
    )
    p.add_argument("--prefix", default="dranspose", help="Redis key prefix of this pipeline")


def access_options(p: argparse.ArgumentParser) -> None:
    """The bearer token of the HTTP API (dranspose/http/auth.py, docs/security.md).

    Both default to None, so that :meth:`Settings.access` can tell an option given from one
    left to the environment.
    """
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


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0 meaning any free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def host_option(p: argparse.ArgumentParser, settings: Settings) -> None:
    """Loopback unless told otherwise: on a laptop the API is not offered to the whole network;
    in a container (the image sets $DRANSPOSE_HOST) loopback would be unreachable."""
    p.add_argument(
        "--host",
        default=settings.host,
        help="address the HTTP API listens on (default $DRANSPOSE_HOST or 127.0.0.1; "
        "0.0.0.0 for every interface)",
    )


def data_port_option(p: argparse.ArgumentParser) -> None:
    """A fixed data-plane port lets a firewall or a Kubernetes pod spec name it."""
    p.add_argument(
        "--data-port",
        type=port_number,
        default=None,
        metavar="PORT",
        help="TCP port of the ZMQ data socket (default 0: any free port; the "
        "registry tells the senders which; reducer: the port of $REDUCER_URL)",
    )


def seconds(text: str) -> float:
    """An argparse type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value:g} is not a positive number of seconds")
    return value


def controller_grace_option(p: argparse.ArgumentParser, settings: Settings) -> None:
    """How long an ingester, worker or reducer keeps its part of a running scan without a
    controller: a controller restarted within it (a rescheduled pod) takes the scan over; past
    it the component aborts its part with the reason instead of waiting for ever."""
    p.add_argument(
        "--controller-grace",
        type=seconds,
        default=settings.controller_grace,
        metavar="SECONDS",
        help="while no controller holds the lock, keep this component's part of a running "
        "scan this long for a successor to take over, then abort it with the reason "
        "(default $DRANSPOSE_CONTROLLER_GRACE or 60)",
    )

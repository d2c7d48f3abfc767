"""What ``dranspose capture``, ``convert`` and ``protocols`` do: the capture-file tools."""

from __future__ import annotations

import argparse
import sys

from dranspose.cli.options import SubParsers
from dranspose.cli.settings import Settings


def run_protocols(args: argparse.Namespace, settings: Settings) -> int:
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


def run_capture(args: argparse.Namespace, settings: Settings) -> int:
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


def run_convert(args: argparse.Namespace, settings: Settings) -> int:
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


def add_capture_tools(sub: SubParsers) -> None:
    """The parsers of ``capture``, ``convert`` and ``protocols`` (kept here, beside what they run)."""
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
    p.set_defaults(func=run_capture)

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
    p.set_defaults(func=run_convert)

    p = sub.add_parser("protocols", help="list the upstream protocols ingesters understand")
    p.set_defaults(func=run_protocols)

"""What ``dranspose capture``, ``convert`` and ``protocols`` do: the capture-file tools."""

from __future__ import annotations

import argparse
import sys

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

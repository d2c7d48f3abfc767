"""What ``dranspose replay`` does: check the options, replay, print the summary."""

from __future__ import annotations

import argparse
import sys

from dranspose.cli.settings import Settings


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    from dranspose.tools.replay import run_replay as replay

    if not args.files and not args.source:
        print("dranspose replay: give capture files (-f) or a source class (-s)", file=sys.stderr)
        return 2
    if args.keep_alive and args.port is None:
        print("dranspose replay: --keep-alive needs --port", file=sys.stderr)
        return 2
    access = settings.access(args.token, args.protect_reads)
    if args.port is not None:
        print(f"dranspose replay: {access.describe()}", file=sys.stderr)
        print(
            f"dranspose replay: results viewer on http://{args.host}:{args.port}/viewer/",
            file=sys.stderr,
        )
    build_meta = settings.build_meta()
    try:
        summary = replay(
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
            access=access,
            build_meta=build_meta,
        )
    except KeyboardInterrupt:
        print("dranspose replay: interrupted", file=sys.stderr)
        return 130
    for line in summary.report_lines():
        print(f"  {line}", file=sys.stderr)
    print(summary.describe(), file=sys.stderr)  # the last thing printed
    return 0 if summary.ok else 1

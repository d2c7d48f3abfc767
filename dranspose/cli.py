"""The ``dranspose`` command: one sub-command per component or tool."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from dranspose import __version__

logger = logging.getLogger("dranspose.cli")


def _configure_logging() -> None:
    """``LOG_LEVEL`` (DEBUG, INFO, ...) sets verbosity; payload loggers print as ``LEVEL:name:msg``."""
    level_name = os.environ.get("LOG_LEVEL", "INFO").upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        print(f"dranspose: LOG_LEVEL={level_name!r} is not a log level, using INFO", file=sys.stderr)
        level = logging.INFO
    logging.basicConfig(level=level)


def _add_replay(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="run worker and reducer classes offline on captured streams",
        description="Run worker and reducer classes on capture files (.cbors, .cbors.gz, .pkls) "
        "or a source class, without Redis or servers. Modules are imported from the current "
        "directory, so 'src.worker:TestWorker' works from a payload folder.",
    )
    p.add_argument("-w", "--workerclass", required=True, metavar="MODULE:CLASS",
                   help="worker class, e.g. src.worker:TestWorker")
    p.add_argument("-r", "--reducerclass", required=True, metavar="MODULE:CLASS",
                   help="reducer class, e.g. src.reducer:TestReducer")
    p.add_argument("-f", "--files", nargs="+", default=None, metavar="FILE",
                   help="capture files, one per ingester/stream; merged by event number")
    p.add_argument("-s", "--source", default=None, metavar="MODULE:CLASS",
                   help="class whose get_source_generators() yields InternalWorkerMessages")
    p.add_argument("-p", "--parameters", default=None, metavar="FILE",
                   help="parameter file: JSON [{\"name\": ..., \"data\": ...}], CBOR or .pkl")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="number of worker instances (default 2)")
    p.add_argument("--no-broadcast-first", action="store_true",
                   help="send the first event to one worker only")
    p.add_argument("--port", type=int, default=None,
                   help="serve the reducer's publish data and parameters over HTTP on this port")
    p.add_argument("--host", default="127.0.0.1", help="address for --port (default 127.0.0.1)")
    p.add_argument("--keep-alive", action="store_true",
                   help="with --port: keep serving after the replay until Ctrl-C")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.set_defaults(func=_run_replay)


def _run_replay(args: argparse.Namespace) -> int:
    from dranspose.replay import run_replay

    if not args.files and not args.source:
        print("dranspose replay: give capture files (-f) or a source class (-s)", file=sys.stderr)
        return 2
    if args.keep_alive and args.port is None:
        print("dranspose replay: --keep-alive needs --port", file=sys.stderr)
        return 2
    try:
        summary = run_replay(
            args.workerclass, args.reducerclass, zmq_files=args.files, source=args.source,
            parameter_file=args.parameters, port=args.port, nworkers=args.workers,
            broadcast_first=not args.no_broadcast_first, keep_alive=args.keep_alive,
            show_progress=False if args.no_progress else None, host=args.host,
        )
    except KeyboardInterrupt:
        print("dranspose replay: interrupted", file=sys.stderr)
        return 130
    print(summary.describe(), file=sys.stderr)
    for failure in summary.failures:
        print(f"  FAILED {failure.describe()}", file=sys.stderr)
    return 0 if summary.ok else 1


class _UserError(Exception):
    pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dranspose", description="Distributed streaming map-reduce for detector streams."
    )
    parser.add_argument("--version", action="version", version=f"dranspose {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_replay(sub)
    args = parser.parse_args(argv)
    _configure_logging()
    from dranspose.capture import CaptureError
    from dranspose.parameters import ParameterError
    from dranspose.payload import PayloadError
    from dranspose.protocol import BuildMetaError

    try:
        return int(args.func(args) or 0)
    except (CaptureError, ParameterError, PayloadError, BuildMetaError, OSError) as exc:
        print(f"dranspose {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""What ``dranspose source`` does: pick the source the options describe, run it, summarise."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Union

from dranspose.cli.settings import Settings

SYNTHETIC_OPTIONS = (
    "shape",
    "dtype",
    "frames",
    "compression",
    "filename",
    "series",
    "pause",
    "seed",
)
"""The options of generated images; they default to None so a --replay can refuse them."""


def _mistake(args: argparse.Namespace) -> Optional[str]:
    """Options that do not go together, which argparse cannot see."""
    given = [name for name in SYNTHETIC_OPTIONS if getattr(args, name) is not None]
    if args.replay is not None and given:
        return f"{', '.join(f'--{name}' for name in given)} do not apply to --replay"
    if args.replay is None and args.stream is not None:
        return "--stream needs --replay"
    if args.replay is None and args.protocol is not None:
        return "--protocol needs --replay (generated series are STINS)"
    return None


def run_source(args: argparse.Namespace, settings: Settings) -> int:
    from dranspose.tools.source import RawCaptureSource, SendStats, SourceError, StinsSource

    mistake = _mistake(args)
    if mistake is not None:
        print(f"dranspose source: {mistake}", file=sys.stderr)
        return 2
    sock_type = "PUB" if args.pub else None if args.protocol is not None else "PUSH"
    source: Union[RawCaptureSource, StinsSource, None] = None
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
                sock_type=sock_type or "PUSH",
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

"""What ``dranspose up`` does: merge the command line into the pipeline file and start it."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

from dranspose.cli.settings import Settings


def _ingesters(specs: list[str]) -> list[dict[str, str]]:
    """``STREAM[:PROTOCOL]=URL`` options as the pipeline file's ingester entries."""
    ingesters = []
    for spec in specs:
        name, sep, url = spec.partition("=")
        if not sep:
            raise ValueError(f"--ingester {spec!r}: expected STREAM[:PROTOCOL]=URL")
        stream, _, protocol = name.partition(":")
        ingesters.append({"stream": stream, "upstream": url, "protocol": protocol or "stins"})
    return ingesters


def run_up(args: argparse.Namespace, settings: Settings) -> int:
    from dranspose.tools.up import PipelineConfigError, load_config, run_pipeline

    ingesters: Optional[list[dict[str, str]]] = None
    if args.ingester:
        try:
            ingesters = _ingesters(args.ingester)
        except ValueError as exc:
            print(f"dranspose up: {exc}", file=sys.stderr)
            return 2
    overrides: dict[str, Any] = {
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
    access = settings.access(args.token, args.protect_reads)
    # the children get the token in their environment, never on their command lines
    print(f"dranspose up: {access.describe()}", file=sys.stderr)
    return run_pipeline(config, ready_file=args.ready_file, access=access)

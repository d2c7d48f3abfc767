"""The full bad-input campaign, with the figures for the report.

    PYTHONPATH=. python bench/badinput.py fuzz            # 10,000 inputs per fuzz target
    PYTHONPATH=. python bench/badinput.py rest            # >1,000 requests per REST server
    PYTHONPATH=. python bench/badinput.py fuzz --examples 500 --target stins --target capture

``fuzz`` feeds every target of ``tests/fuzz_targets.py`` (each protocol parser with the ingester's
classification, the PandA TCP stream, the Sardana posts, the restricted unpickler, the capture
readers) and prints per target the inputs run, the wall time and the first failure, if any.
``rest`` starts Redis and the pipeline as processes, runs one scan, and sends schemathesis'
generated requests to the controller and the reducer, printing the statuses seen and every
problem (a 5xx, or a 4xx without a ``detail`` message). Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run_fuzz(examples: int, names: list[str]) -> bool:
    from tests.fuzz_targets import TARGETS
    from tests.test_fuzz_parsers import fuzz

    ok = True
    total_start = time.monotonic()
    print(f"{'target':22} {'inputs':>8} {'seconds':>8}  result")
    for name in names or sorted(TARGETS):
        start = time.monotonic()
        try:
            count = fuzz(name, examples)
            result = "ok"
        except Exception as exc:  # report and go on with the next target
            count, result, ok = -1, f"FAILED: {type(exc).__name__}: {exc}"[:300], False
            traceback.print_exc()
        print(f"{name:22} {count:>8} {time.monotonic() - start:>8.1f}  {result}", flush=True)
    print(f"total {time.monotonic() - total_start:.1f} s")
    return ok


def run_rest(examples: int, controller_examples: int) -> bool:
    from tests.badinput_servers import run_scan, running_pipeline
    from tests.conftest import raw_xrd_events
    from tests.rest_campaign import Tally, run_campaign

    ok = True
    with running_pipeline() as servers:
        run_scan(servers, [frames for _, frames in raw_xrd_events()])
        for name, url, n in [
            ("controller", servers.controller_url, controller_examples),
            ("reducer", servers.reducer_url, examples),
        ]:
            tally = run_campaign(url, n, Tally())
            print(f"{name}: {tally.summary()}", flush=True)
            for operation, count in sorted(tally.per_operation.items()):
                print(f"    {count:6} {operation}")
            for problem in tally.problems:
                print(f"  PROBLEM {problem}")
            ok = ok and not tally.problems
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("fuzz", help="fuzz the parsers and capture readers")
    p.add_argument("--examples", type=int, default=10_000, help="inputs per target")
    p.add_argument("--target", action="append", default=[], help="only this target (repeatable)")
    p = sub.add_parser("rest", help="schemathesis against the controller and reducer")
    p.add_argument(
        "--examples", type=int, default=25, help="requests per operation and pass for the reducer"
    )
    p.add_argument(
        "--controller-examples",
        type=int,
        default=100,
        help="the same for the controller (fewer operations take input)",
    )
    args = parser.parse_args()
    if args.what == "fuzz":
        return 0 if run_fuzz(args.examples, args.target) else 1
    return 0 if run_rest(args.examples, args.controller_examples) else 1


if __name__ == "__main__":
    sys.exit(main())

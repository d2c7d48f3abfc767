"""Where each process of a local pipeline spends its CPU: py-spy per process during one scan.

Runs the bench/throughput.py pipeline (Redis, controller, one ingester, N workers, the reducer),
attaches ``py-spy record`` (raw, collapsed stacks, idle samples left out) to every dranspose
process for the length of one saturated scan of 2 kB frames, and prints per process the
functions with the most samples *inclusive* (a frame anywhere on the stack) and *self* (the
innermost frame), as a share of that process's samples. This is the map of where per-event
costs sit before a change, and the check that a change removed what it meant to.

py-spy is not a dependency of the project: ``pip install py-spy`` first (root, or ptrace
allowed, to attach to running processes).

    python bench/process_profile.py [--events 40000] [--size 2048] [--workers 2] [--top 15]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from procstats import format_cpu  # bench/, on sys.path
from throughput import LocalPipeline, cpu_of


def summarise(path: Path, top: int) -> str:
    """The top inclusive and self functions of one collapsed-stack file."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for f in stack.split(";")
        ]
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    if not total:
        return "  no samples\n"
    lines = [f"  {total} samples; inclusive:"]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in inclusive.most_common(top)]
    lines.append("  self:")
    lines += [f"    {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--only", nargs="*", default=None, help="process names to profile")
    parser.add_argument(
        "--gil",
        action="store_true",
        help="sample only threads holding the GIL (Python CPU, not time blocked in syscalls)",
    )
    args = parser.parse_args()
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy not found: pip install py-spy")
    pipeline = LocalPipeline(workers=args.workers, streams=args.streams, timeout=60)
    out = Path(tempfile.mkdtemp(prefix="dranspose-profile-"))
    try:
        pipeline.scan(args.size, 1000)  # warm up
        names = [n for n in pipeline.procs if args.only is None or n in args.only]
        spies = {
            name: subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(pipeline.procs[name].pid),
                    "--format",
                    "raw",
                    "--rate",
                    str(args.rate),
                    "--output",
                    str(out / f"{name}.txt"),
                    "--nonblocking",
                    *(["--gil"] if args.gil else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name in names
        }
        result: dict[str, dict[str, float]] = {}
        scan = threading.Thread(
            target=lambda: result.update(run=pipeline.scan(args.size, args.events))
        )
        scan.start()
        scan.join()
        for proc in spies.values():
            proc.send_signal(2)
        for proc in spies.values():
            proc.wait(30)
        run = result["run"]
        print(
            f"{args.events} events of {args.size} B: {run['events_s']:,.0f} events/s "
            f"(with py-spy attached)"
        )
        print(f"CPU ms per 1,000 events: {format_cpu(cpu_of(run))}\n")
        for name in names:
            print(f"{name}:")
            print(summarise(out / f"{name}.txt", args.top))
    finally:
        pipeline.close()


if __name__ == "__main__":
    main()

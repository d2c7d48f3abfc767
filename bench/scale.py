"""Scale curves of a local pipeline: events/s for 1, 2 and 4 workers and 1 or 3 streams per event.

One command for the question "what does another worker, or another stream, buy or cost?".
Each setting is a fresh bench/throughput.py pipeline (Redis, controller, one ingester per
stream, the workers, the reducer, all processes) fed 2 kB frames on the ``bench`` stream and,
with 3 streams, 64-byte frames on ``pcap`` and ``scanctl`` as a position capture and a scan
controller would send. For every setting it prints the median events/s, the ratio to raw pyzmq
PUSH -> PULL events/s for the same frame size measured in the same round, and the CPU ms per
1,000 events of the controller (the one component every event passes through by account, not
by data) and of the other processes.

Settings are measured in rounds (each once per round, a fresh pipeline each time, after a short
warm-up scan), so a change of machine load hits all of them alike.

``--big`` instead runs one scan of 10^6 events (2 kB, 2 workers) and prints every process's
peak RSS every 10 % of the scan and at the end: bounded memory means the figures at 10 % and
at 100 % are about the same.

    python bench/scale.py [--events 10000] [--repeats 3]
    python bench/scale.py --big [--events 1000000]
"""

from __future__ import annotations

import argparse
import os
import statistics

from procstats import format_cpu, format_rss, median_table  # bench/, on sys.path
from throughput import LocalPipeline, cpu_of, raw_pyzmq

FRAME = 2048
SETTINGS = [(1, 1), (2, 1), (4, 1), (2, 3)]  # (workers, streams per event)


def one(workers: int, streams: int, events: int, warmup: int) -> dict[str, float]:
    pipeline = LocalPipeline(workers=workers, streams=streams, timeout=30)
    try:
        if warmup:
            pipeline.scan(FRAME, warmup)  # connections up, imports and caches warm
        return pipeline.scan(FRAME, events)
    finally:
        pipeline.close()


def curves(events: int, repeats: int, warmup: int) -> None:
    runs: dict[tuple[int, int], list[dict[str, float]]] = {s: [] for s in SETTINGS}
    raws: list[float] = []
    for _ in range(repeats):
        raws.append(raw_pyzmq(FRAME, events) * 1e6 / FRAME)
        for workers, streams in SETTINGS:
            runs[(workers, streams)].append(one(workers, streams, events, warmup))
    raw = statistics.median(raws)
    print(
        f"{events} events of {FRAME} B per scan, median of {repeats} rounds; raw pyzmq "
        f"{raw:,.0f} events/s (same rounds); load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(
        f"{'workers':>7} {'streams':>7} | {'events/s':>9} {'min':>8} {'max':>8} {'of raw':>7} "
        f"| {'controller CPU ms/1000 ev':>25}"
    )
    for (workers, streams), values in runs.items():
        rates = [v["events_s"] for v in values]
        med = median_table(values)
        print(
            f"{workers:>7} {streams:>7} | {statistics.median(rates):>9,.0f} {min(rates):>8,.0f} "
            f"{max(rates):>8,.0f} {statistics.median(rates) / raw:>7.0%} "
            f"| {med['cpu:controller']:>25,.0f}"
        )
    print("\nCPU ms per 1,000 events of every process (medians):")
    for (workers, streams), values in runs.items():
        print(f"{workers} workers, {streams} streams: {format_cpu(cpu_of(median_table(values)))}")


def big(events: int) -> None:
    pipeline = LocalPipeline(workers=2, streams=1, timeout=30)
    try:
        pipeline.scan(FRAME, 1000)
        print(
            f"after a 1,000-event warm-up, peak RSS MB: {format_rss(pipeline.processes.peak_rss())}"
        )
        run = pipeline.scan(FRAME, events, progress_every=max(1, events // 10))
        print(
            f"{events:,} events of {FRAME} B, 2 workers: {run['events_s']:,.0f} events/s, "
            f"p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms (last 100,000 events)"
        )
        print(f"CPU ms per 1,000 events: {format_cpu(cpu_of(run))}")
        print(f"peak RSS MB at the end: {format_rss(pipeline.processes.peak_rss())}")
    finally:
        pipeline.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=500, help="events of the warm-up scan")
    parser.add_argument("--big", action="store_true", help="one 10^6-event scan, peak memory")
    args = parser.parse_args()
    if args.big:
        big(args.events or 1_000_000)
    else:
        curves(args.events or 10_000, args.repeats, args.warmup)


if __name__ == "__main__":
    main()

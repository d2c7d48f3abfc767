"""The controller's account of a long scan: memory and CPU per event, for all 10^7 events.

    python bench/controller_account.py [--events 10000000] [--batch 10000]

Drives the pure account (dranspose.core.scan_account.ScanAccount with its assigner) the way the
controller does, four workers asking for ``--batch`` events each (released as runs) and reporting
them done (in reverse order, the worst case for the ranges), and
prints the resident memory before, at 10 % and at the end, and the controller CPU per 1,000
events. Baseline of the same run: the same number of events added to a plain Python ``set``
(what the account held before it kept ranges), so the two memory figures sit side by side.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def account(events: int, batch: int) -> None:
    from dranspose.core.coordination import ScanInfo
    from dranspose.core.protocol import WorkerName
    from dranspose.core.scan_account import ScanAccount
    from dranspose.core.triggermap import TriggerMap

    workers = [WorkerName(f"w{i}") for i in range(4)]
    scan = ScanInfo(scan_id="bench", n_events=events, workers=list(workers), streams=["eiger"])
    run = ScanAccount(
        scan, TriggerMap.simple(["eiger"], events - 2), None, {w: {"generic"} for w in workers}
    )
    start = rss_mb()
    marks = []
    done, cpu = 0, time.process_time()
    while done < events:
        for worker in workers:
            owed: dict[str, list[int]] = {}
            for released in run.released_runs(run.assigner.request_runs(worker, batch)):
                for name in {w for names in released.streams.values() for w in names}:
                    owed.setdefault(name, []).extend(reversed(released.events()))
                done += released.length
            for name, numbers in owed.items():  # one report per worker, as the controller reads
                run.completed_all(WorkerName(name), numbers)
        if not marks and done >= events // 10:
            marks.append(rss_mb())
    cpu = time.process_time() - cpu
    assert run.progress.completed == events and run.all_accounted
    print(
        f"account : {events} events, RSS {start:.0f} MB at start, {marks[0]:.0f} MB at 10 %, "
        f"{rss_mb():.0f} MB at the end; {1000 * cpu / events * 1000:.1f} ms CPU per 1,000 "
        f"events; {run.accounted.ranges} range(s) held"
    )


def baseline(events: int) -> None:
    start = rss_mb()
    held = set()
    for number in range(events):
        held.add(number)
    print(f"baseline: a set of {events} event numbers: RSS {start:.0f} MB -> {rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--part", choices=["account", "baseline"])
    args = parser.parse_args()
    if args.part == "account":
        account(args.events, args.batch)
    elif args.part == "baseline":
        baseline(args.events)
    else:  # each part in a fresh interpreter, so neither sees the other's heap
        for part in ("baseline", "account"):
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--part",
                    part,
                    "--events",
                    str(args.events),
                    "--batch",
                    str(args.batch),
                ],
                check=True,
            )


if __name__ == "__main__":
    main()

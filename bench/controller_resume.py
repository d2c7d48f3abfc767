"""What a successor controller pays to resume a scan: time and peak memory vs events in the scan.

    python bench/controller_resume.py [--events 10000 100000 1000000] [--batch 256] [--repeat 5]

For each size, a private Redis is filled as a predecessor leaves it mid-scan: the scan record,
its account record, the assignment stream (four workers, each request answered with ``--batch``
events as runs) and the report stream (each worker's completions, one report per batch), with
the last batch of every worker still owed. Then the successor's own code path
(``Controller._resumed``: read both streams in chunks and rebuild the account and its assigner)
runs ``--repeat`` times; printed are the median wall time and, in a separate run under
``tracemalloc``, the peak of Python memory allocated during the rebuild.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import tracemalloc


async def fill(store, events: int, batch: int):  # type: ignore[no-untyped-def]
    """The Redis content of a scan of ``events`` events left mid-way; returns its ScanInfo."""
    from dranspose.core.coordination import AssignedRun, ScanInfo, WorkerReport
    from dranspose.core.protocol import WorkerName
    from dranspose.core.scan_resume import record_of
    from dranspose.core.triggermap import TriggerMap

    workers = [WorkerName(f"w{i}") for i in range(4)]
    trigger_map = TriggerMap.simple(["eiger"], events - 2)
    scan = ScanInfo(scan_id="bench", n_events=events, workers=workers, streams=["eiger"])
    record = record_of(scan, trigger_map.request, {w: {"generic"} for w in workers}, {})
    await store.set_account_record(scan.scan_id, record.model_dump_json())
    await store.set_scan(scan)
    first, turn = 1, 0
    pending: list[tuple[str, list[int]]] = []
    await store.publish_runs(scan.scan_id, [AssignedRun(0, 1, {"eiger": workers})], answered=[])
    while first < events - 1:  # stop short of the last event: the scan is not over
        worker = workers[turn % 4]
        length = min(batch, events - 1 - first)
        runs = [AssignedRun(first, length, {"eiger": [worker]})]
        await store.report(scan.scan_id, WorkerReport(worker=worker, want=length))
        await store.publish_runs(scan.scan_id, runs, answered=[worker])
        pending.append((worker, list(range(first, first + length))))
        if len(pending) > 4:  # each worker's latest batch stays owed
            done_by, numbers = pending.pop(0)
            await store.report(scan.scan_id, WorkerReport(worker=done_by, completed=numbers))
        first += length
        turn += 1
    return scan


async def measure(url: str, events: int, batch: int, repeat: int) -> tuple[float, float, int]:
    from dranspose.core.scan_resume import Ledger
    from dranspose.io.store import Store
    from dranspose.runtime.controller import Controller

    store = Store(url, prefix=f"bench{events}")
    try:
        scan = await fill(store, events, batch)
        controller = Controller(store)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            run = await controller.resumed_account(scan, Ledger(), None)
            times.append(time.perf_counter() - started)
        tracemalloc.start()
        tracemalloc.reset_peak()
        await controller.resumed_account(scan, Ledger(), None)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        await store.redis.flushdb()
        return statistics.median(times), peak / 2**20, run.progress.completed
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from dranspose.io.local_redis import PrivateRedis

    with PrivateRedis() as redis:
        for events in args.events:
            median, peak, completed = asyncio.run(
                measure(redis.url, events, args.batch, args.repeat)
            )
            print(
                f"{events:>9} events ({args.batch}-event batches): rebuilt in {median * 1000:7.1f} ms "
                f"(median of {args.repeat}), peak {peak:6.1f} MiB allocated; "
                f"{completed} completed, the rest owed or unreleased"
            )


if __name__ == "__main__":
    main()

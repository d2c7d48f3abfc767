"""CPU seconds and peak memory of the pipeline's processes, read from /proc.

A rate alone does not say which process a change made cheaper. The benchmarks therefore take a
snapshot of every component's CPU time (user + system, /proc/<pid>/stat) before and after a
scan and divide the difference by the scan's events, giving CPU ms per 1,000 events for the
controller, each ingester, each worker, the reducer and Redis. Peak RSS is the kernel's
high-water mark (VmHWM in /proc/<pid>/status), so a growing heap shows up even if it was
released before the end of the scan. /proc rather than psutil keeps the benchmarks free of a
dependency the project does not declare; Linux only, like the rest of bench/.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` including its threads (fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as fh:
        # the command name (field 2) may contain spaces; everything after its ")" is fixed
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    """The resident-set high-water mark of ``pid`` in MB (0 if the kernel does not report it)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class CpuDelta:
    """CPU seconds each named process spent between two snapshots."""

    seconds: dict[str, float]

    def per_1000(self, events: int) -> dict[str, float]:
        """CPU ms per 1,000 events of each process (= CPU µs per event)."""
        return {name: s / events * 1e6 for name, s in self.seconds.items()}


class ProcessSet:
    """Named pids of a pipeline; ``snapshot`` before a scan, ``since`` after it."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)

    def snapshot(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def since(self, before: dict[str, float]) -> CpuDelta:
        now = self.snapshot()
        return CpuDelta({name: now[name] - before[name] for name in before})

    def peak_rss(self) -> dict[str, float]:
        return {name: peak_rss_mb(pid) for name, pid in self.pids.items()}


def median_table(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per-key median over runs (the keys of the first run)."""
    import statistics

    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def format_cpu(per_1000: dict[str, float]) -> str:
    """One line: ``name ms`` per process and the total, CPU ms per 1,000 events."""
    parts = [f"{name} {value:,.0f}" for name, value in per_1000.items()]
    return ", ".join(parts) + f"; total {sum(per_1000.values()):,.0f}"


def format_rss(rss: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:,.0f}" for name, value in rss.items())

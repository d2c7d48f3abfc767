"""Memory under a source twice as fast as the workers: peak RSS of every process.

Starts a private Redis, the controller, one ingester, two workers and the reducer as processes
(``dranspose`` commands), and a synthetic STINS detector (``dranspose source``, PUSH) sending 2 MB
images (1024 x 1024 uint16) at twice the rate the two workers can take: each event costs the
worker ``--cost`` seconds (a sleep), so the workers consume ``2 / cost`` events/s and the source
offers ``4 / cost``. The scan has as many images as the workers process in ``--seconds``, so the
source is held back for the whole run. Every 0.1 s the resident memory of each process is read
from /proc (psutil when installed); at the end the peak per process (kernel's VmHWM, or the
sampled maximum) is printed next to the bound stated in docs/delivery-guarantee.md, together with
the offered and consumed rates and the completed/lost counts.

    python bench/backpressure.py [--seconds 60] [--cost 0.05]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

import httpx

from dranspose.core.backpressure import DEFAULT_BUFFER_BYTES
from dranspose.core.triggermap import TriggerMap
from dranspose.io.local_redis import PrivateRedis
from dranspose.io.transports.base import DEFAULT_BACKLOG_BYTES
from dranspose.io.transports.zmq_upstream import PULL_RCVHWM

HERE = Path(__file__).resolve().parent
SHAPE = (1024, 1024)
FRAME_BYTES = SHAPE[0] * SHAPE[1] * 2
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident set size in KiB.

    The current size comes from psutil when it is installed; the peak is the kernel's own
    high-water mark (VmHWM in /proc/PID/status), which also catches peaks between samples.
    """
    fields = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    try:
        import psutil

        current = psutil.Process(pid).memory_info().rss // 1024
    except ImportError:
        current = fields.get("VmRSS", 0)
    return current, fields.get("VmHWM", 0)


class Sampler(threading.Thread):
    """Reads the RSS of the named processes every ``interval`` seconds; keeps the maximum."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.interval = interval
        self.peak: dict[str, int] = dict.fromkeys(pids, 0)
        self.hwm: dict[str, int] = dict.fromkeys(pids, 0)
        self.halt = threading.Event()

    def sample(self) -> None:
        for name, pid in self.pids.items():
            try:
                now, hwm = rss_kib(pid)
            except (OSError, ValueError):
                continue
            self.peak[name] = max(self.peak[name], now)
            self.hwm[name] = max(self.hwm[name], hwm)

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            self.sample()


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not within {timeout} s")


def stop(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs.values():
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=60.0,
        help="how long the workers need for the scan (default 60)",
    )
    parser.add_argument(
        "--cost",
        type=float,
        default=0.05,
        help="seconds each worker spends per event (default 0.05)",
    )
    args = parser.parse_args()
    workers = 2
    consumed_rate = workers / args.cost
    offered_rate = 2 * consumed_rate
    images = int(consumed_rate * args.seconds)

    redis = PrivateRedis().start()
    api, results, upstream = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis.url,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "BACKPRESSURE_COST_SECONDS": str(args.cost),
    }
    commands = {
        "controller": ["controller", "--host", "127.0.0.1", "--port", str(api)],
        "worker w0": ["worker", "--class", "backpressure_payload:CostWorker", "--name", "w0"],
        "worker w1": ["worker", "--class", "backpressure_payload:CostWorker", "--name", "w1"],
        "reducer": [
            "reducer",
            "--class",
            "backpressure_payload:CountingReducer",
            "--port",
            str(results),
        ],
        "ingester": ["ingester", "--stream", "bench", "--upstream", f"tcp://127.0.0.1:{upstream}"],
    }
    procs: dict[str, subprocess.Popen] = {}
    client = httpx.Client(base_url=f"http://127.0.0.1:{api}", timeout=10)
    try:
        for name, cmd in commands.items():
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "dranspose", *cmd], cwd=HERE, env=env
            )
        wait_for(
            lambda: len(client.get("/api/v1/config").json()["components"]) >= 5, 60, "registration"
        )
        request = TriggerMap.simple(["bench"], images).request.model_dump(mode="json")
        client.post("/api/v1/sequence", content=json.dumps(request)).raise_for_status()
        pids = {name: proc.pid for name, proc in procs.items()}
        pids["redis"] = redis_pid(redis)
        procs["source"] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dranspose",
                "source",
                "--bind",
                f"tcp://*:{upstream}",
                "--shape",
                *map(str, SHAPE),
                "--dtype",
                "uint16",
                "--frames",
                str(images),
                "--rate",
                f"{offered_rate:g}",
            ],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        pids["source"] = procs["source"].pid
        sampler = Sampler({k: v for k, v in pids.items() if v})
        sampler.start()
        started = time.monotonic()
        first: Optional[tuple[float, int]] = None  # (time, completed) once events complete
        while True:
            progress = client.get("/api/v1/progress").json()
            now = time.monotonic()
            if first is None and progress["completed"] > 1:
                first = (now, int(progress["completed"]))
            if client.get("/api/v1/status").json()["finished"]:
                break
            if now - started > 4 * args.seconds + 60:
                raise TimeoutError("the scan did not finish")
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        assert first is not None
        consumed = (int(progress["completed"]) - first[1]) / (time.monotonic() - first[0])
        sampler.sample()
        sampler.halt.set()
        summary, _ = procs.pop("source").communicate(timeout=30)
        published = httpx.get(f"http://127.0.0.1:{results}/api/v1/result/", timeout=30).json()
    finally:
        stop(procs)
        client.close()
        redis.stop()

    print(
        f"frames {FRAME_BYTES / MB:.0f} MiB, {images} images, 2 workers at {args.cost:g} s "
        f"per event"
    )
    print(
        f"source offered {offered_rate:g} images/s ({offered_rate * FRAME_BYTES / 1e6:.0f} MB/s);"
        f" workers consume {consumed_rate:g}/s nominal"
    )
    print(f"source: {summary.strip().splitlines()[-1] if summary.strip() else '?'}")
    print(
        f"workers consumed {consumed:.1f} images/s (measured; offered/consumed = "
        f"{offered_rate / consumed:.2f}); scan took {elapsed:.1f} s"
    )
    print(
        f"completed {progress['completed']} of {progress['total']} events, "
        f"failed {len(progress['failed'])}, lost {len(progress['lost'])}; "
        f"reducer received {published['results']} results, "
        f"{published['bytes'] / 1e6:.0f} MB of frames"
    )
    print("peak RSS per process (MiB): kernel VmHWM / max sampled every 0.1 s")
    for name in sampler.pids:
        print(f"  {name:<11} {sampler.hwm[name] / 1024:8.1f} / {sampler.peak[name] / 1024:8.1f}")
    read_ahead = max(2, min(256, DEFAULT_BACKLOG_BYTES // FRAME_BYTES))
    ingester_bound = (PULL_RCVHWM + read_ahead + 1) * FRAME_BYTES
    worker_bound = 2 * min(256, max(4, DEFAULT_BUFFER_BYTES // FRAME_BYTES)) * FRAME_BYTES
    print(
        f"stated bound of frame data (docs/delivery-guarantee.md), above each process's "
        f"idle size: ingester <= {ingester_bound / MB:.0f} MiB plus the frames on their way "
        f"to the workers (counted in the workers' bound), each worker <= "
        f"{worker_bound / MB:.0f} MiB"
    )


def redis_pid(redis: PrivateRedis) -> int:
    process = getattr(redis, "_process", None)
    return process.pid if process is not None else 0


if __name__ == "__main__":
    main()

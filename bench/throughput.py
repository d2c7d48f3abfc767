"""End-to-end throughput of a local pipeline against raw pyzmq, measured in the same run.

Starts a private Redis, the controller, one ingester, two workers and the reducer as separate
processes (``dranspose`` commands, as at a beamline), then for each frame size pushes a STINS
series (header, N images, series end) into the ingester and measures:

* events/s and MB/s from the first image sent until the controller reports the scan finished,
* p50/p99 end-to-end latency (source send -> reducer ``process_result``),
* raw pyzmq PUSH -> PULL throughput between two processes for the same frame size, and
  PUSH -> zero-copy forwarder -> PULL (the two hops, source -> ingester -> worker, that every
  frame takes in the pipeline: the ceiling for any design with a separate ingester process).

Targets on a 2-core machine: at 2 MB frames >= 50 % of raw pyzmq MB/s; at 2 kB >= 5,000 events/s.

    python bench/throughput.py [--sizes 2048 131072 2097152] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import zmq

from dranspose.cli.settings import Settings
from dranspose.core.triggermap import TriggerMap
from dranspose.io.local_redis import PrivateRedis

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_events(size: int) -> int:
    return max(1000, min(20_000, int(1e9 // 2 // size)))


# -- raw pyzmq baseline ----------------------------------------------------------------------


def _raw_receiver(url: str, count: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.connect(url)
    for _ in range(count):
        sock.recv_multipart(copy=False)
    sock.close()
    ctx.term()


def raw_pyzmq(size: int, count: int) -> float:
    """MB/s of PUSH -> PULL between two processes, 2 frames (header + data) per message."""
    port = free_port()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.bind(f"tcp://127.0.0.1:{port}")
    receiver = multiprocessing.Process(
        target=_raw_receiver, args=(f"tcp://127.0.0.1:{port}", count + 1)
    )
    receiver.start()
    payload = zmq.Frame(np.random.default_rng(0).bytes(size))
    header = b'{"htype": "image"}'
    sock.send_multipart([header, payload], copy=False)  # connection warm-up
    start = time.perf_counter()
    for _ in range(count):
        sock.send_multipart([header, payload], copy=False)
    receiver.join()
    elapsed = time.perf_counter() - start
    sock.close()
    ctx.term()
    return count * size / elapsed / 1e6


def _raw_forwarder(src: str, dst_port: int, count: int) -> None:
    ctx = zmq.Context(io_threads=2)
    pull = ctx.socket(zmq.PULL)
    pull.connect(src)
    push = ctx.socket(zmq.PUSH)
    push.bind(f"tcp://127.0.0.1:{dst_port}")
    for _ in range(count):
        push.send_multipart(pull.recv_multipart(copy=False), copy=False)
    push.close(linger=-1)
    pull.close()
    ctx.term()


def raw_pyzmq_forwarded(size: int, count: int) -> float:
    """MB/s of PUSH -> zero-copy forwarder -> PULL: the two hops every frame takes here."""
    port, mid = free_port(), free_port()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.bind(f"tcp://127.0.0.1:{port}")
    procs = [
        multiprocessing.Process(
            target=_raw_forwarder, args=(f"tcp://127.0.0.1:{port}", mid, count + 1)
        ),
        multiprocessing.Process(target=_raw_receiver, args=(f"tcp://127.0.0.1:{mid}", count + 1)),
    ]
    for proc in procs:
        proc.start()
    payload = zmq.Frame(np.random.default_rng(0).bytes(size))
    header = b'{"htype": "image"}'
    sock.send_multipart([header, payload], copy=False)
    start = time.perf_counter()
    for _ in range(count):
        sock.send_multipart([header, payload], copy=False)
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - start
    sock.close()
    ctx.term()
    return count * size / elapsed / 1e6


# -- the pipeline ----------------------------------------------------------------------------


class LocalPipeline:
    """Redis, controller, two workers, the reducer and one ingester (stream ``bench``) as
    processes, fed by a PUSH socket; the payload classes are ``module:Class`` names in bench/."""

    def __init__(
        self,
        worker: str = "throughput_payload:BenchWorker",
        reducer: str = "throughput_payload:BenchReducer",
        reducer_args: tuple[str, ...] = (),
        timeout: float = 10,
    ) -> None:
        self.redis = PrivateRedis().start()
        self.api = free_port()
        self.results = free_port()
        self.upstream = free_port()
        env = {
            **os.environ,
            "REDIS_URL": self.redis.url,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        commands = [
            ["controller", "--host", "127.0.0.1", "--port", str(self.api)],
            ["worker", "--class", worker, "--name", "w0"],
            ["worker", "--class", worker, "--name", "w1"],
            ["reducer", "--class", reducer, *reducer_args, "--port", str(self.results)],
            ["ingester", "--stream", "bench", "--upstream", f"tcp://127.0.0.1:{self.upstream}"],
        ]
        self.procs = []
        for cmd in commands:
            self.procs.append(
                subprocess.Popen([sys.executable, "-m", "dranspose", *cmd], cwd=HERE, env=env)
            )
            if cmd[0] == "controller":
                time.sleep(0.5)
        # the controllers started here inherit $DRANSPOSE_TOKEN; send it when set
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.api}",
            timeout=timeout,
            headers=Settings().client_headers(),
        )
        self._wait(lambda: len(self.client.get("/api/v1/config").json()["components"]) >= 5, 60)
        self.ctx = zmq.Context()
        self.source = self.ctx.socket(zmq.PUSH)
        self.source.setsockopt(zmq.SNDHWM, 1000)
        self.source.bind(f"tcp://127.0.0.1:{self.upstream}")

    @staticmethod
    def _wait(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError("pipeline did not get there in time")

    def scan(self, size: int, events: int) -> dict[str, float]:
        request = TriggerMap.simple(["bench"], events).request.model_dump(mode="json")
        response = self.client.post("/api/v1/sequence", content=json.dumps(request))
        response.raise_for_status()
        payload = zmq.Frame(np.random.default_rng(1).bytes(size))
        self.source.send_multipart(
            [json.dumps({"htype": "header", "filename": "", "msg_number": 0}).encode()]
        )
        start = time.time()
        for i in range(events):
            header = json.dumps(
                {
                    "htype": "image",
                    "frame": i,
                    "shape": [size],
                    "type": "uint8",
                    "compression": "none",
                    "msg_number": i + 1,
                    "t_send": time.time(),
                }
            ).encode()
            self.source.send_multipart([header, payload], copy=False)
        self.source.send_multipart(
            [json.dumps({"htype": "series_end", "msg_number": events + 1}).encode()]
        )
        self._wait(lambda: self.client.get("/api/v1/status").json()["finished"], 600)
        elapsed = time.time() - start
        published = httpx.get(
            f"http://127.0.0.1:{self.results}/api/v1/result/",
            timeout=60,
            headers=Settings().client_headers(),
        ).json()
        latency = np.array(published["latency"])
        progress = self.client.get("/api/v1/progress").json()
        assert progress["completed"] == events + 2, progress
        return {
            "events_s": events / elapsed,
            "mb_s": events * size / elapsed / 1e6,
            "p50_ms": float(np.percentile(latency, 50) * 1e3),
            "p99_ms": float(np.percentile(latency, 99) * 1e3),
        }

    def close(self) -> None:
        self.source.close(linger=0)
        self.ctx.term()
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 131072, 2097152])
    parser.add_argument(
        "--events", type=int, default=None, help="events per scan (default by size)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    pipeline = LocalPipeline()
    try:
        print(
            f"{'frame':>9} {'events':>7} | {'events/s':>9} {'MB/s':>8} {'p50 ms':>8} "
            f"{'p99 ms':>8} | {'raw MB/s':>9} {'raw ev/s':>9} {'ratio':>6} | "
            f"{'2-hop MB/s':>10} {'ratio':>6}"
        )
        for size in args.sizes:
            events = args.events or default_events(size)
            runs, raws, hops = [], [], []
            for _ in range(args.repeats):
                raws.append(raw_pyzmq(size, events))
                hops.append(raw_pyzmq_forwarded(size, events))
                runs.append(pipeline.scan(size, events))
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            raw = statistics.median(raws)
            hop = statistics.median(hops)
            print(
                f"{size:>9} {events:>7} | {med['events_s']:>9,.0f} {med['mb_s']:>8,.1f} "
                f"{med['p50_ms']:>8.1f} {med['p99_ms']:>8.1f} | {raw:>9,.1f} "
                f"{raw * 1e6 / size:>9,.0f} {med['mb_s'] / raw:>6.0%} | {hop:>10,.1f} "
                f"{med['mb_s'] / hop:>6.0%}",
                flush=True,
            )
    finally:
        pipeline.close()


if __name__ == "__main__":
    main()

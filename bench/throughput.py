"""End-to-end throughput of a local pipeline against raw pyzmq, measured in the same run.

Starts a private Redis, the controller, one ingester, two workers and the reducer as separate
processes (``dranspose`` commands, as at a beamline), then for each frame size pushes a STINS
series (header, N images, series end) into the ingester and measures:

* events/s and MB/s from the first image sent until the controller reports the scan finished,
* p50/p99 end-to-end latency (source send -> reducer ``process_result``),
* raw pyzmq PUSH -> PULL throughput between two processes for the same frame size, and
  PUSH -> zero-copy forwarder -> PULL (the two hops, source -> ingester -> worker, that every
  frame takes in the pipeline: the ceiling for any design with a separate ingester process),
* the pipeline's skeleton (bench/skeleton.py): its processes and three hops with only the
  per-message Python work and no coordination, what Python processes of this shape reach.

It also prints, per frame size, the CPU ms per 1,000 events each process spent (controller,
ingester, each worker, reducer, Redis; bench/procstats.py), the peak RSS of every process, and
the p50/p99 latency of a scan paced at half the saturated rate of the same round (``--paced``):
a saturated scan's latency is mostly queueing, the paced one shows what an event costs.

Targets (medians, baselines of the same run): at 2 kB >= 25 % of raw pyzmq events/s; at 2 MB
>= 90 % of the two-hop ceiling; at 2 kB and half the saturated rate p99 < 20 ms.

    python bench/throughput.py [--sizes 2048 131072 2097152] [--repeats 3] [--paced 0.5]
                               [--rates 1000 3000]
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
from procstats import ProcessSet, format_cpu, format_rss, median_table  # bench/, on sys.path
from skeleton import skeleton  # bench/, on sys.path

from dranspose.cli.settings import Settings
from dranspose.core.triggermap import TriggerMap
from dranspose.io.local_redis import PrivateRedis

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_events(size: int) -> int:
    """Events per scan for a frame size: about 1.5 GB, at least 1,000 and at most 60,000.

    At 2 kB that is 60,000 events, two to three seconds of the pipeline: with 20,000 (under a
    second) the fixed cost of a scan's start and end, and of the baselines' own start-up, weighed
    several per cent, and raw pyzmq measured anywhere from 85,000 to 138,000 events/s between
    runs on the same host.
    """
    return max(1000, min(60_000, int(1.5e9 // size)))


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


PACING_SLEEP = 0.001
"""A paced source sleeps only when it is at least this far ahead of its schedule, sending the
events due meanwhile back to back (each stamped with its own send time). Sleeping before every
event (70 us apart at 14,000 events/s) made the benchmark's own source take a third of a core
for wake-ups, on the two cores the pipeline runs on; a detector's sender runs elsewhere."""
EXTRA_STREAMS = ("pcap", "scanctl")  # the 2nd and 3rd stream of an event, small frames
EXTRA_BYTES = 64


class LocalPipeline:
    """Redis, controller, ``workers`` workers, the reducer and one ingester per stream as
    processes, each stream fed by its own PUSH socket; the payload classes are ``module:Class``
    names in bench/. The first stream (``bench``) carries the frames of the size measured, the
    others (``pcap``, ``scanctl``: a position capture and a scan controller) 64-byte frames.

    ``procs`` names every process (controller, ingester-STREAM, w0.., reducer, redis, and
    this process as ``source``), so a
    scan can report the CPU each of them spent on it and their peak memory."""

    def __init__(
        self,
        worker: str = "throughput_payload:BenchWorker",
        reducer: str = "throughput_payload:BenchReducer",
        reducer_args: tuple[str, ...] = (),
        timeout: float = 10,
        workers: int = 2,
        streams: int = 1,
    ) -> None:
        self.redis = PrivateRedis().start()
        self.api = free_port()
        self.results = free_port()
        self.streams = ["bench", *EXTRA_STREAMS][:streams]
        self.upstreams = {stream: free_port() for stream in self.streams}
        env = {
            **os.environ,
            "REDIS_URL": self.redis.url,
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        commands: dict[str, list[str]] = {
            "controller": ["controller", "--host", "127.0.0.1", "--port", str(self.api)]
        }
        for i in range(workers):
            commands[f"w{i}"] = ["worker", "--class", worker, "--name", f"w{i}"]
        commands["reducer"] = [
            "reducer",
            "--class",
            reducer,
            *reducer_args,
            "--port",
            str(self.results),
        ]
        for stream, port in self.upstreams.items():
            commands[f"ingester-{stream}"] = [
                "ingester",
                "--stream",
                stream,
                "--upstream",
                f"tcp://127.0.0.1:{port}",
            ]
        self.procs: dict[str, subprocess.Popen] = {}
        for name, cmd in commands.items():
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "dranspose", *cmd], cwd=HERE, env=env
            )
            if name == "controller":
                time.sleep(0.5)
        pids = {name: proc.pid for name, proc in self.procs.items()}
        redis_proc = getattr(self.redis, "_process", None)
        if redis_proc is not None:
            pids["redis"] = redis_proc.pid
        pids["source"] = os.getpid()  # this process: the source loop and the status polls
        self.processes = ProcessSet(pids)
        # the controllers started here inherit $DRANSPOSE_TOKEN; send it when set
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.api}",
            timeout=timeout,
            headers=Settings().client_headers(),
        )
        expected = len(commands)
        self._wait(
            lambda: len(self.client.get("/api/v1/config").json()["components"]) >= expected, 60
        )
        self.ctx = zmq.Context()
        self.sources: dict[str, zmq.Socket] = {}
        for stream, port in self.upstreams.items():
            sock = self.ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.SNDHWM, 1000)
            sock.bind(f"tcp://127.0.0.1:{port}")
            self.sources[stream] = sock
        self.source = self.sources["bench"]

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

    def _send_all(self, parts: list) -> None:  # type: ignore[type-arg]
        for sock in self.sources.values():
            sock.send_multipart(parts)

    def scan(
        self,
        size: int,
        events: int,
        rate: float | None = None,
        progress_every: int = 0,
    ) -> dict[str, float]:
        """One scan of ``events`` events; ``rate`` paces the source (events/s, None: as fast as
        the pipeline takes them). Returns events/s, MB/s, p50/p99 latency, and ``cpu:NAME``:
        CPU ms per 1,000 events of each process during the scan. With ``progress_every``,
        prints the peak RSS of every process each time that many events have been sent, so a
        long scan shows whether memory grows with events."""
        request = TriggerMap.simple(self.streams, events).request.model_dump(mode="json")
        response = self.client.post("/api/v1/sequence", content=json.dumps(request))
        response.raise_for_status()
        payload = zmq.Frame(np.random.default_rng(1).bytes(size))
        small = zmq.Frame(bytes(EXTRA_BYTES))
        extras = [self.sources[s] for s in self.streams[1:]]
        image_header = (
            b'{"htype": "image", "frame": %d, "shape": [%d], "type": "uint8", '
            b'"compression": "none", "msg_number": %d, "t_send": %.6f}'
        )
        extra_header = (
            b'{"htype": "image", "frame": %d, "shape": [%d], "type": "uint8", '
            b'"compression": "none", "msg_number": %d}'
        )
        self._send_all([json.dumps({"htype": "header", "filename": "", "msg_number": 0}).encode()])
        before = self.processes.snapshot()
        start = time.time()
        interval = 1.0 / rate if rate else 0.0
        for i in range(events):
            if interval:
                ahead = start + i * interval - time.time()
                if ahead > PACING_SLEEP:
                    time.sleep(ahead)
            # a detector builds its header elsewhere: format, not json.dumps, keeps this
            # process's share of the two cores small
            header = image_header % (i, size, i + 1, time.time())
            self.source.send_multipart([header, payload], copy=False)
            if extras:
                other = extra_header % (i, EXTRA_BYTES, i + 1)
                for sock in extras:
                    sock.send_multipart([other, small], copy=False)
            if progress_every and (i + 1) % progress_every == 0:
                print(
                    f"  {i + 1:>9,} events sent, peak RSS MB: "
                    f"{format_rss(self.processes.peak_rss())}",
                    flush=True,
                )
        self._send_all([json.dumps({"htype": "series_end", "msg_number": events + 1}).encode()])
        self._wait(lambda: self.client.get("/api/v1/status").json()["finished"], 3600)
        elapsed = time.time() - start
        cpu = self.processes.since(before).per_1000(events)
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
            **{f"cpu:{name}": value for name, value in cpu.items()},
        }

    def close(self) -> None:
        for sock in self.sources.values():
            sock.close(linger=0)
        self.ctx.term()
        for proc in self.procs.values():
            proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.redis.stop()


def cpu_of(run: dict[str, float]) -> dict[str, float]:
    """The ``cpu:NAME`` entries of a scan's figures, keyed by process name."""
    return {key[4:]: value for key, value in run.items() if key.startswith("cpu:")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 131072, 2097152])
    parser.add_argument(
        "--events", type=int, default=None, help="events per scan (default by size)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--paced",
        type=float,
        default=0.5,
        metavar="FRACTION",
        help="also run a scan paced at this fraction of the saturated rate of the same round "
        "and report its latency (default 0.5; 0 to skip)",
    )
    parser.add_argument(
        "--rates",
        type=float,
        nargs="*",
        default=[],
        metavar="EVENTS_PER_S",
        help="also run a 2 kB scan paced at each of these fixed rates (3 s each) and print its "
        "latency percentiles, e.g. --rates 1000 3000",
    )
    args = parser.parse_args()
    pipeline = LocalPipeline()
    cpu_lines, paced_lines = [], []
    try:
        print(
            f"{'frame':>9} {'events':>7} | {'events/s':>9} {'MB/s':>8} {'p50 ms':>8} "
            f"{'p99 ms':>8} | {'raw MB/s':>9} {'raw ev/s':>9} {'ratio':>6} | "
            f"{'2-hop MB/s':>10} {'ratio':>6} | {'skel ev/s':>9} {'ratio':>6}"
        )
        for size in args.sizes:
            events = args.events or default_events(size)
            runs, raws, hops, skels, paced = [], [], [], [], []
            for _ in range(args.repeats):  # interleaved: load changes hit every path alike
                raws.append(raw_pyzmq(size, events))
                hops.append(raw_pyzmq_forwarded(size, events))
                skels.append(skeleton(size, events)[0])
                runs.append(pipeline.scan(size, events))
                if args.paced:
                    rate = args.paced * runs[-1]["events_s"]
                    paced.append({"rate": rate, **pipeline.scan(size, events, rate=rate)})
            med = median_table(runs)
            raw = statistics.median(raws)
            hop = statistics.median(hops)
            skel = statistics.median(skels)
            print(
                f"{size:>9} {events:>7} | {med['events_s']:>9,.0f} {med['mb_s']:>8,.1f} "
                f"{med['p50_ms']:>8.1f} {med['p99_ms']:>8.1f} | {raw:>9,.1f} "
                f"{raw * 1e6 / size:>9,.0f} {med['mb_s'] / raw:>6.0%} | {hop:>10,.1f} "
                f"{med['mb_s'] / hop:>6.0%} | {skel:>9,.0f} {med['events_s'] / skel:>6.0%}",
                flush=True,
            )
            cpu_lines.append(f"{size:>9} B: {format_cpu(cpu_of(med))}")
            if paced:
                pmed = median_table(paced)
                paced_lines.append(
                    f"{size:>9} B: paced at {pmed['rate']:,.0f} events/s "
                    f"({args.paced:.0%} of saturated), got {pmed['events_s']:,.0f}: "
                    f"p50 {pmed['p50_ms']:.1f} ms, p99 {pmed['p99_ms']:.1f} ms; "
                    f"CPU {format_cpu(cpu_of(pmed))}"
                )
        print(f"\nCPU ms per 1,000 events (saturated scans, median of {args.repeats}):")
        print("\n".join(cpu_lines))
        if paced_lines:
            print(f"\nlatency at moderate rate (median of {args.repeats}):")
            print("\n".join(paced_lines))
        for rate in args.rates:
            fixed = pipeline.scan(2048, int(rate * 3), rate=rate)
            print(
                f"\n2048 B paced at {rate:,.0f} events/s: p50 {fixed['p50_ms']:.1f} ms, "
                f"p99 {fixed['p99_ms']:.1f} ms; CPU {format_cpu(cpu_of(fixed))}"
            )
        print(f"\npeak RSS MB: {format_rss(pipeline.processes.peak_rss())}")
    finally:
        pipeline.close()


if __name__ == "__main__":
    main()

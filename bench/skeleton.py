"""The pipeline's skeleton: its processes and hops with nothing but the per-message Python work.

A baseline for ``bench/throughput.py`` at small frames. Raw pyzmq PUSH -> PULL is one hop
between two processes; every event in dranspose crosses three (source -> ingester -> worker ->
reducer) and is touched by Python in four processes, which share the host's cores with the
controller and Redis. This runs exactly that shape with no coordination at all:

* an *ingester* reads each upstream message (non-blocking, in batches), parses its JSON header
  (the protocol must, to know what it is) and forwards consecutive events in one message per
  batch, alternating between the workers;
* two *workers* read those messages, call a function per event that parses the header as the
  benchmark payload does, pickle its result and send a batch's results in one message;
* a *reducer* unpickles every result.

No Redis, no controller, no assignment, no completion accounting, no delivery guarantee: the
rate of this skeleton on the same machine in the same run is what Python processes of this
shape can reach at all, so the pipeline's rate divided by it is the share that coordination,
accounting and the guarantee cost. It is a ceiling, not a design: a skeleton ingester that
alternates blindly between workers would lose events the first time one of them stalls.

    python bench/skeleton.py [--size 2048] [--events 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import socket
import statistics
import time
from typing import Any

import numpy as np
import zmq
from procstats import ProcessSet, format_cpu  # bench/, on sys.path

BATCH = 64
BATCH_BYTES = 1 << 20
"""A batch ends at 64 events or 1 MB, as the pipeline's (io/dataplane.py)."""
WORKERS = 2


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ingester(upstream: str, workers: list[str], count: int, finish: Any) -> None:
    ctx = zmq.Context(io_threads=2)
    pull = ctx.socket(zmq.PULL)
    pull.connect(upstream)
    pushes = []
    for url in workers:
        push = ctx.socket(zmq.PUSH)
        push.connect(url)
        pushes.append(push)
    seen, turn = 0, 0
    while seen < count:
        batch: list[int] = []
        frames: list[zmq.Frame] = []
        flags = 0  # block for the first message of a batch, then take what is there
        size = 0
        while len(batch) < BATCH and size < BATCH_BYTES and seen < count:
            try:
                message = pull.recv_multipart(flags, copy=False)
            except zmq.Again:
                break
            flags = zmq.NOBLOCK
            header = json.loads(message[0].bytes)
            batch.append(header["frame"])
            frames.extend(message)
            size += sum(len(f) for f in message)
            seen += 1
        header_out = json.dumps({"events": [[n, 2] for n in batch]}).encode()
        pushes[turn].send_multipart([header_out, *frames], copy=False)
        turn = (turn + 1) % len(pushes)
    finish.wait()  # stays until its CPU time is read
    for push in pushes:
        push.close(linger=-1)
    pull.close()
    ctx.term()


def _payload(header: zmq.Frame) -> float:
    return float(json.loads(header.bytes)["t_send"])


def _worker(inbox: str, reducer: str) -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(inbox)
    push = ctx.socket(zmq.PUSH)
    push.connect(reducer)
    while True:
        parts = pull.recv_multipart(copy=False)
        header = json.loads(parts[0].bytes)
        if header.get("stop"):
            break
        bodies, index = [], 1
        for _event, frame_count in header["events"]:
            bodies.append(pickle.dumps(_payload(parts[index])))
            index += frame_count
        push.send_multipart(
            [json.dumps({"events": [n for n, _ in header["events"]]}).encode(), *bodies]
        )
    push.close(linger=-1)
    pull.close()
    ctx.term()


def _reducer(inbox: str, count: int, done: Any, finish: Any) -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(inbox)
    seen = 0
    latest = 0.0
    while seen < count:
        parts = pull.recv_multipart(copy=False)
        for body in parts[1:]:
            latest = pickle.loads(body.buffer)
            seen += 1
    done.put((time.time(), latest))
    finish.wait()
    pull.close()
    ctx.term()


def skeleton(size: int, count: int) -> tuple[float, dict[str, float]]:
    """Events/s of ``count`` events of ``size`` bytes through the skeleton (source to reducer),
    and the CPU ms per 1,000 events of each of its processes."""
    upstream, reducer = _port(), _port()
    inboxes = [f"tcp://127.0.0.1:{_port()}" for _ in range(WORKERS)]
    done: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    finish = multiprocessing.Event()
    procs = [
        multiprocessing.Process(
            target=_reducer, args=(f"tcp://127.0.0.1:{reducer}", count, done, finish)
        ),
        *(
            multiprocessing.Process(target=_worker, args=(url, f"tcp://127.0.0.1:{reducer}"))
            for url in inboxes
        ),
    ]
    for proc in procs:
        proc.start()
    time.sleep(0.3)  # the binds are up before the ingester connects
    ingester = multiprocessing.Process(
        target=_ingester, args=(f"tcp://127.0.0.1:{upstream}", inboxes, count, finish)
    )
    ingester.start()
    names = ["reducer", *(f"w{i}" for i in range(WORKERS))]
    processes = ProcessSet(
        {"ingester": ingester.pid or 0, **{n: p.pid or 0 for n, p in zip(names, procs)}}
    )
    processes.pids["source"] = os.getpid()
    time.sleep(0.2)  # the ingester is connected
    ctx = zmq.Context()
    source = ctx.socket(zmq.PUSH)
    source.setsockopt(zmq.SNDHWM, 1000)
    source.bind(f"tcp://127.0.0.1:{upstream}")
    payload = zmq.Frame(np.random.default_rng(1).bytes(size))
    header = b'{"htype": "image", "frame": %d, "shape": [%d], "msg_number": %d, "t_send": %.6f}'
    before = processes.snapshot()
    start = time.time()
    for i in range(count):
        source.send_multipart([header % (i, size, i + 1, time.time()), payload], copy=False)
    finished, _ = done.get(timeout=600)
    elapsed = finished - start
    cpu = processes.since(before).per_1000(count)
    finish.set()
    ingester.join()
    for url in inboxes:  # a socket per worker: each gets its own stop
        stopper = ctx.socket(zmq.PUSH)
        stopper.connect(url)
        stopper.send(b'{"stop": true}')
        stopper.close(linger=1000)
    for proc in procs:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    source.close(linger=0)
    ctx.term()
    return count / elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = [skeleton(args.size, args.events) for _ in range(args.repeats)]
    rates = [rate for rate, _ in runs]
    cpu = {name: statistics.median(c[name] for _, c in runs) for name in runs[0][1]}
    print(
        f"skeleton, {args.events} events of {args.size} B: median {statistics.median(rates):,.0f} "
        f"events/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})\n"
        f"CPU ms per 1,000 events: {format_cpu(cpu)}"
    )


if __name__ == "__main__":
    main()

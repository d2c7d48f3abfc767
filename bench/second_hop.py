"""What the second hop (ingester -> worker) costs, and whether shared memory would make it cheaper.

Every frame in the pipeline travels source -> ingester -> worker. This benchmark isolates that
path, without Redis, controller, trigger map or payload, in three processes, and compares it with
raw pyzmq PUSH -> PULL (one hop) measured in the same run:

* ``raw``: source -> receiver, one TCP hop (the issue's baseline);
* ``tcp``: source -> forwarder -> receiver, the forwarder passes the received ``zmq.Frame`` on
  with ``copy=False`` (what the ingester does);
* ``shm``: the forwarder copies each frame into a shared-memory ring and sends only
  ``offset length``; the receiver copies it out (the cheapest same-host design that still lets
  the forwarder route each frame to the worker the trigger map names).

It answers one question with figures: is the >= 50 % of raw target at 2 MB reachable by any
design that keeps a separate ingester process on a 2-core machine? Both the source and the
ingester touch every byte, so the two-hop paths are CPU-bound on two cores, whichever way the
second hop is made.

    python bench/second_hop.py [--size 2097152] [--events 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from multiprocessing import shared_memory
from typing import Optional

import numpy as np
import zmq
from throughput import free_port  # bench/ is the script's directory, first on sys.path

RING_SLOTS = 64


def _source(url: str, size: int, count: int) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.bind(url)
    payload = zmq.Frame(np.random.default_rng(0).bytes(size))
    for _ in range(count):
        sock.send_multipart([b'{"htype": "image"}', payload], copy=False)
    sock.close(linger=-1)
    ctx.term()


def _forwarder(upstream: str, downstream: str, count: int, ring: Optional[str], size: int) -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 16)  # as the ingester's PULL upstream for large frames
    pull.connect(upstream)
    push = ctx.socket(zmq.PUSH)
    push.bind(downstream)
    shm = shared_memory.SharedMemory(name=ring) if ring else None
    for i in range(count):
        parts = pull.recv_multipart(copy=False)
        if shm is None:
            push.send_multipart(parts, copy=False)
            continue
        data = parts[1].buffer
        offset = (i % RING_SLOTS) * size
        shm.buf[offset : offset + len(data)] = data
        push.send_multipart([parts[0].bytes, b"%d %d" % (offset, len(data))])
    pull.close(linger=0)
    push.close(linger=-1)
    if shm is not None:
        shm.close()
    ctx.term()


def _receiver(url: str, count: int, ring: Optional[str], result: multiprocessing.Queue) -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.connect(url)
    shm = shared_memory.SharedMemory(name=ring) if ring else None
    received = 0
    started = 0.0
    for i in range(count):
        parts = pull.recv_multipart(copy=False)
        if i == 0:
            started = time.perf_counter()  # the first message only warms the connections up
            continue
        if shm is not None:
            offset, length = map(int, parts[1].bytes.split())
            out = bytearray(length)
            out[:] = shm.buf[offset : offset + length]
            received += length
        else:
            received += len(parts[1].buffer)
    result.put((received, time.perf_counter() - started))
    pull.close(linger=0)
    if shm is not None:
        shm.close()
    ctx.term()


def measure(mode: str, size: int, events: int) -> float:
    """MB/s delivered to the receiver in one run of ``mode`` (raw, tcp or shm)."""
    count = events + 1
    first, second = free_port(), free_port()
    ring = None
    if mode == "shm":
        ring = shared_memory.SharedMemory(create=True, size=RING_SLOTS * size)
    result: multiprocessing.Queue = multiprocessing.Queue()
    receive_at = f"tcp://127.0.0.1:{first if mode == 'raw' else second}"
    procs = [
        multiprocessing.Process(
            target=_receiver, args=(receive_at, count, ring and ring.name, result)
        )
    ]
    if mode != "raw":
        procs.append(
            multiprocessing.Process(
                target=_forwarder,
                args=(f"tcp://127.0.0.1:{first}", receive_at, count, ring and ring.name, size),
            )
        )
    procs.append(
        multiprocessing.Process(target=_source, args=(f"tcp://127.0.0.1:{first}", size, count))
    )
    for proc in procs:
        proc.start()
    received, seconds = result.get(timeout=300)
    for proc in procs:
        proc.join()
    if ring is not None:
        ring.close()
        ring.unlink()
    if received != events * size:
        raise RuntimeError(f"{mode}: received {received} bytes, expected {events * size}")
    return received / seconds / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2 * 1024 * 1024)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {"raw": [], "tcp": [], "shm": []}
    for _ in range(args.repeats):
        for mode in runs:  # interleaved, so a noisy neighbour hits all three alike
            runs[mode].append(measure(mode, args.size, args.events))
    raw = statistics.median(runs["raw"])
    print(f"frame {args.size} bytes, {args.events} events, median of {args.repeats} runs")
    print(f"{'path':<40} {'MB/s':>8} {'of raw':>7}")
    labels = {
        "raw": "raw pyzmq, one hop",
        "tcp": "two hops, zero-copy TCP forward",
        "shm": "two hops, shared-memory second hop",
    }
    for mode, label in labels.items():
        value = statistics.median(runs[mode])
        print(f"{label:<40} {value:8.1f} {value / raw:7.0%}")


if __name__ == "__main__":
    main()

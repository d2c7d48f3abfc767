"""What one wake-up costs on this host: the floor under every per-batch step of the pipeline.

An event crosses five processes (source, ingester, worker and its payload thread, reducer and
its payload thread). When events arrive back to back, each of those steps handles a batch and
its cost is shared by the events of the batch; when they trickle in (a moderate rate), each
event pays it alone. This measures the primitives, in CPU time (user + system of every thread
and process involved, so a busy or noisy host does not hide the cost in waiting):

* a hand-over to a payload thread and back (``loop.run_in_executor``, as the worker and the
  reducer call their payload), against calling the function in place;
* a message to another process and its answer over ZMQ PUSH/PULL on loopback (the data plane's
  wake-up of the next component), against the same messages sent back to back (batched);
* an ``asyncio.sleep(0.001)`` (the cheapest timed wake-up of an event loop).

    python bench/handoff.py [--rounds 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import multiprocessing
import os
import resource
import statistics
import time

import zmq


def cpu_self() -> float:
    """CPU seconds of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _thread_round_trips(rounds: int) -> tuple[float, float]:
    """CPU µs per run_in_executor round trip, and per plain call of the same function."""
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(1)

    def nothing() -> None:
        return None

    await loop.run_in_executor(pool, nothing)  # the thread exists
    start = cpu_self()
    for _ in range(rounds):
        await loop.run_in_executor(pool, nothing)
    hop = (cpu_self() - start) / rounds * 1e6
    start = cpu_self()
    for _ in range(rounds):
        nothing()
    plain = (cpu_self() - start) / rounds * 1e6
    pool.shutdown()
    return hop, plain


async def _sleeps(rounds: int) -> float:
    start = cpu_self()
    for _ in range(rounds):
        await asyncio.sleep(0.001)
    return (cpu_self() - start) / rounds * 1e6


def _echo(pull_url: str, push_url: str, rounds: int) -> None:
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.connect(pull_url)
    push = ctx.socket(zmq.PUSH)
    push.connect(push_url)
    for _ in range(rounds):
        push.send(pull.recv())
    push.close(linger=-1)
    pull.close()
    ctx.term()


def _process_round_trips(rounds: int, batched: bool) -> float:
    """CPU µs (both processes, ZMQ's I/O threads included) per message sent to another process
    and echoed back: one at a time (each wakes the peer) or all sent before any is read."""
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, 0)
    out_port = push.bind_to_random_port("tcp://127.0.0.1")
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 0)
    in_port = pull.bind_to_random_port("tcp://127.0.0.1")
    peer = multiprocessing.Process(
        target=_echo,
        args=(f"tcp://127.0.0.1:{out_port}", f"tcp://127.0.0.1:{in_port}", rounds + 1),
    )
    peer.start()
    push.send(b"warm-up")
    pull.recv()
    before = cpu_self()
    children_before = cpu_children()
    message = b"x" * 64
    if batched:
        for _ in range(rounds):
            push.send(message)
        for _ in range(rounds):
            pull.recv()
    else:
        for _ in range(rounds):
            push.send(message)
            pull.recv()
    ours = cpu_self() - before
    peer.join()  # its CPU is counted once it was waited for
    theirs = cpu_children() - children_before
    push.close(linger=0)
    pull.close(linger=0)
    ctx.term()
    return (ours + theirs) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        hop, plain = asyncio.run(_thread_round_trips(args.rounds))
        rows.setdefault("payload thread hand-over and back (run_in_executor)", []).append(hop)
        rows.setdefault("the same function called in place", []).append(plain)
        rows.setdefault("asyncio.sleep(0.001) wake-up", []).append(
            asyncio.run(_sleeps(args.rounds // 5))
        )
        rows.setdefault("message to another process and back, one at a time", []).append(
            _process_round_trips(args.rounds, batched=False)
        )
        rows.setdefault("message to another process and back, sent back to back", []).append(
            _process_round_trips(args.rounds, batched=True)
        )
    print(
        f"CPU µs per operation, median of {args.repeats} x {args.rounds}; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    for name, values in rows.items():
        print(f"  {statistics.median(values):>9.1f}  {name}")


if __name__ == "__main__":
    start = time.monotonic()
    main()
    print(f"({time.monotonic() - start:.0f} s)")

"""Replay throughput against the rate of merely reading the same capture.

Writes a synthetic 100,000-event ingester dump (one STINS-like stream, a 64-byte JSON header and a
256-byte frame per event), then measures, in the same run and alternating:

* read:   iterating ``read_capture`` over the file (the floor any replay pays),
* replay: ``run_replay`` with a no-op worker (returns None) and a no-op reducer, 2 workers,
* replay+results: the worker returns a small dict every event, so every event also takes the
  pickle round trip and a ``process_result`` call.

Prints the median events/s of each and the ratio to the read-only rate (target: replay >= 50 %).

    python bench/replay.py [--events N] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from dranspose.core.event import InternalWorkerMessage, StreamData
from dranspose.io.capture import read_capture, write_capture
from dranspose.tools.replay import run_replay


class NoopWorker:
    def process_event(self, event, parameters=None, tick=False):
        return None


class ResultWorker:
    def process_event(self, event, parameters=None, tick=False):
        return {"n": event.event_number}


class NoopReducer:
    def process_result(self, result, parameters=None):
        pass


def synthetic_messages(n: int):
    payload = bytes(range(256))
    for i in range(n):
        header = json.dumps(
            {
                "htype": "image",
                "frame": i,
                "shape": [16, 8],
                "type": "uint16",
                "compression": "none",
                "msg_number": i,
            }
        ).encode()
        yield InternalWorkerMessage.model_construct(
            event_number=i,
            streams={"bench": StreamData.model_construct(typ="STINS", frames=[header, payload])},
            created_at=None,
        )


def rate_read(path: Path) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in read_capture(path))
    return count / (time.perf_counter() - start)


def rate_replay(path: Path, worker: type) -> float:
    summary = run_replay(worker, NoopReducer, [path], show_progress=False)
    assert summary.ok, summary.failures[:3]
    return summary.events / summary.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.cbors"
        write_capture(path, synthetic_messages(args.events))
        size_mb = path.stat().st_size / 1e6
        print(f"capture: {args.events} events, {size_mb:.1f} MB")
        runs: dict[str, list[float]] = {"read": [], "replay": [], "replay+results": []}
        for _ in range(args.repeats):
            runs["read"].append(rate_read(path))
            runs["replay"].append(rate_replay(path, NoopWorker))
            runs["replay+results"].append(rate_replay(path, ResultWorker))
        base = statistics.median(runs["read"])
        print(f"{'mode':<16}{'median events/s':>18}{'min':>12}{'max':>12}{'vs read':>10}")
        for mode, rates in runs.items():
            median = statistics.median(rates)
            print(
                f"{mode:<16}{median:>18,.0f}{min(rates):>12,.0f}{max(rates):>12,.0f}"
                f"{median / base:>9.0%}"
            )
        # each round's replay against the read of the same round: the host's speed drifts
        # between rounds (a shared machine), the ratio within one round much less
        ratios = [r / b for r, b in zip(runs["replay"], runs["read"])]
        ratio = statistics.median(ratios)
        print(
            f"replay reaches {ratio:.0%} of the read-only rate, median of the rounds' ratios "
            f"({', '.join(f'{r:.0%}' for r in ratios)}; target >= 50 %): "
            f"{'OK' if ratio >= 0.5 else 'BELOW TARGET'}"
        )


if __name__ == "__main__":
    main()

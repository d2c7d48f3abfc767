"""What the high-rate tuning advice is worth: events/s of a local pipeline for several settings.

Starts a private Redis, the controller, one ingester, two workers and the reducer as processes
(as bench/throughput.py does) and pushes STINS series of small frames (2 kB) through them:

* the worker returns a result for every event, or for one in 100 (``None`` otherwise);
* results of 8 bytes or of 80 kB;
* the simple trigger map (every event its own constraint) or runs of 16 events per constraint.

Settings are measured in rounds (every setting once per round), so a change of machine load
affects all of them alike; the table gives the median and the range over the rounds. Used in
docs/howto-high-rates.md.

    python bench/tuning.py [--events 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import zmq

from dranspose.core.triggermap import TriggerMap

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from throughput import LocalPipeline  # noqa: E402

FRAME_BYTES = 2048


def runs_map(stream: str, events: int, run: int) -> dict:
    """``events`` events in runs of ``run`` consecutive events sharing one constraint."""
    if events % run:
        raise ValueError(f"{events} events do not split into runs of {run}")
    part = {stream: [[{"constraint": 0}]] * run}
    return {"parts": {"run": part}, "sequence": ["run"] * (events // run)}


class Pipeline(LocalPipeline):
    """bench/throughput.py's pipeline with the tuning payload."""

    def __init__(self) -> None:
        super().__init__(
            "tuning_payload:TuningWorker",
            "tuning_payload:TuningReducer",
            ("--worker-class", "tuning_payload:TuningWorker"),
            timeout=30,
        )

    def set(self, name: str, value: int) -> None:
        self.client.post(f"/api/v1/parameter/{name}", content=str(value)).raise_for_status()

    def scan(self, request: dict, events: int) -> float:
        """Events/s from the first image sent until the scan and the reducer are finished."""
        self.client.post("/api/v1/sequence", content=json.dumps(request)).raise_for_status()
        frame = zmq.Frame(np.random.default_rng(1).bytes(FRAME_BYTES))
        self.source.send_multipart([b'{"htype": "header", "filename": "", "msg_number": 0}'])
        start = time.monotonic()
        for i in range(events):
            header = json.dumps(
                {
                    "htype": "image",
                    "frame": i,
                    "shape": [FRAME_BYTES],
                    "type": "uint8",
                    "compression": "none",
                    "msg_number": i + 1,
                }
            ).encode()
            self.source.send_multipart([header, frame], copy=False)
        self.source.send_multipart(
            [json.dumps({"htype": "series_end", "msg_number": events + 1}).encode()]
        )
        self._wait(lambda: self.client.get("/api/v1/status").json()["finished"], 900)
        elapsed = time.monotonic() - start
        progress = self.client.get("/api/v1/progress").json()
        if progress["completed"] != events + 2:  # a rate of an incomplete scan means nothing
            raise RuntimeError(
                f"scan incomplete: {progress['completed']} of {events + 2} "
                f"completed, {len(progress['failed'])} failed, "
                f"{len(progress['lost'])} lost (machine overloaded?)"
            )
        return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = [
        ("result every event, 8 B", "simple", 1, 8),
        ("result every event, 80 kB", "simple", 1, 80_000),
        ("result 1 in 100, 80 kB", "simple", 100, 80_000),
        ("result every event, 8 B", "runs of 16", 1, 8),
        ("result 1 in 100, 80 kB", "runs of 16", 100, 80_000),
    ]
    pipeline = Pipeline()
    rates: dict[int, list[float]] = {i: [] for i in range(len(settings))}
    try:
        # rounds over all settings, so a change of machine load affects every setting alike
        for _ in range(args.repeats):
            for index, (_, kind, every, size) in enumerate(settings):
                pipeline.set("every", every)
                pipeline.set("result_bytes", size)
                time.sleep(1.0)  # parameters reach every component within a second
                if kind == "simple":
                    request = TriggerMap.simple(["bench"], args.events).request.model_dump(
                        mode="json"
                    )
                else:
                    request = runs_map("bench", args.events, 16)
                rates[index].append(pipeline.scan(request, args.events))
    finally:
        pipeline.close()
    print(
        f"{args.events} events of {FRAME_BYTES} B, 2 workers, {args.repeats} rounds; "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )
    print(f"{'worker returns':<28} {'trigger map':<12} {'median ev/s':>11} {'min':>7} {'max':>7}")
    for index, (label, kind, _, _) in enumerate(settings):
        values = rates[index]
        print(
            f"{label:<28} {kind:<12} {statistics.median(values):>11,.0f} "
            f"{min(values):>7,.0f} {max(values):>7,.0f}"
        )


if __name__ == "__main__":
    main()

"""Payload of bench/backpressure.py: a worker with a fixed cost per event, a reducer that counts.

The cost is a sleep (``BACKPRESSURE_COST_SECONDS``), not computation: on a shared machine a
sleep costs the same every time, so the workers' rate is known before the run and the source
can be set to exactly twice it.
"""

import os
import time


class CostWorker:
    def __init__(self, *args, **kwargs):
        self.cost = float(os.environ.get("BACKPRESSURE_COST_SECONDS", "0.05"))

    def process_event(self, event):
        stream = event.streams.get("bench")
        if stream is None or len(stream.frames) < 2:
            return None
        time.sleep(self.cost)
        return len(stream.frames[1])


class CountingReducer:
    def __init__(self, *args, **kwargs):
        self.publish = {"results": 0, "bytes": 0}

    def process_result(self, result):
        self.publish["results"] += 1
        self.publish["bytes"] += result.payload

"""Payload for bench/tuning.py: how often a worker returns a result, and how large it is.

Both are run-time parameters, so one pipeline measures every combination.
"""

import numpy as np

from dranspose.core.parameters import IntParameter


class TuningWorker:
    @staticmethod
    def describe_parameters():
        return [
            IntParameter(
                name="every",
                default=1,
                description="return a result for one event in this many (1: all)",
            ),
            IntParameter(
                name="result_bytes", default=8, description="size of each result (a float64 array)"
            ),
        ]

    def process_event(self, event, parameters=None):
        stream = event.streams.get("bench")
        if stream is None or len(stream.frames) < 2:
            return None
        if event.event_number % parameters["every"].value:
            return None
        return np.zeros(max(parameters["result_bytes"].value // 8, 1))


class TuningReducer:
    def __init__(self):
        self.publish = {"results": 0, "bytes": 0}

    def process_result(self, result):
        self.publish["results"] += 1
        self.publish["bytes"] += result.payload.nbytes

"""Replay payloads for the reducer API tests: a source that stops at event 5 until the test
opens its gate, a worker scaling by a parameter, a reducer publishing a small tree."""

from __future__ import annotations

import threading

import numpy as np

from dranspose.core.event import InternalWorkerMessage, StreamData
from dranspose.core.parameters import FloatParameter, IntParameter


class GatedSource:
    """Yields events 0..9 but waits at event 5 until the test opens the gate."""

    gate = threading.Event()
    reached = threading.Event()

    def get_source_generators(self):
        def gen():
            for i in range(10):
                if i == 5:
                    GatedSource.reached.set()
                    assert GatedSource.gate.wait(20)
                yield InternalWorkerMessage(
                    event_number=i, streams={"s": StreamData(typ="t", frames=[b"x"])}
                )

        return [gen()]


class ScaleWorker:
    @staticmethod
    def describe_parameters():
        return [IntParameter(name="scale", default=2, description="multiplier")]

    def process_event(self, event, parameters=None):
        return event.event_number * parameters["scale"].value, parameters["scale"].value


class PublishReducer:
    @staticmethod
    def describe_parameters():
        return [FloatParameter(name="threshold", default=0.5)]

    def __init__(self):
        self.publish_rlock = threading.RLock()
        self.publish = {
            "values": [],
            "info": {"name": "demo", "ratio": np.float64(0.5), "missing": float("nan")},
            "image": np.arange(6, dtype=np.uint16).reshape(2, 3),
        }

    def process_result(self, result, parameters=None):
        with self.publish_rlock:
            self.publish["values"].append(result.payload[0])
            self.publish.setdefault("hash_log", []).append(
                (result.event_number, result.payload[1], result.parameters_hash)
            )

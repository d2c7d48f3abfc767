"""Payloads that record how dranspose calls them, to compare replay with the live pipeline.

Live, the components run as tasks of the test's own process (tests/pipeline.py), so class-level
lists see the calls of both.
"""

from __future__ import annotations

import threading

from dranspose.parameters import IntParameter

CALLS: list[tuple] = []
_LOCK = threading.Lock()


def record(*call: object) -> None:
    with _LOCK:
        CALLS.append(call)


class RecordingWorker:
    """``get_tick_interval`` raises: both runners must report it once and tick by the default."""

    def __init__(self, parameters, context, **kwargs):
        record("worker_init", sorted(kwargs), "rows" in parameters)

    @staticmethod
    def describe_parameters():
        return [IntParameter(name="rows", default=3)]

    def get_tick_interval(self, parameters):
        raise ValueError("no interval configured")

    def process_event(self, event, parameters=None, tick=False):
        record("process_event", event.event_number, tick, parameters["rows"].value)
        return {"event": event.event_number, "rows": parameters["rows"].value}

    def finish(self, parameters=None):
        record("worker_finish", parameters["rows"].value)


class RecordingReducer:
    def __init__(self, parameters=None, context=None, **kwargs):
        self.publish = {"events": []}
        record("reducer_init", "rows" in parameters)

    def process_result(self, result, parameters=None):
        record("process_result", result.event_number, result.payload["rows"])
        self.publish["events"].append(result.event_number)

    def timer(self):
        record("timer")
        return 0.05

    def finish(self, parameters=None):
        record("reducer_finish", parameters["rows"].value)

"""Payloads that record exactly what the runtime handed them.

The worker returns, per event, what it saw (event number, its own name and tags, the streams and
the decoded STINS packets, the value of parameter ``x``). The reducer keeps every result in
``self.publish`` and appends one JSON line per call to the file named by ``$DRANSPOSE_TEST_RECORD``
(when set), so a test reads exactly what the reducer received and when ``finish`` ran. Worker
``finish`` calls are recorded in the same file. Each payload instance has its own ``instance`` id:
the runtime makes new instances for every scan.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any, Optional

from dranspose.event import EventData, ResultData
from dranspose.middlewares.stream1 import parse
from dranspose.parameters import IntParameter, StrParameter

RECORD_ENV = "DRANSPOSE_TEST_RECORD"
FAIL_EVENT = 3
"""The event :class:`FailingWorker` raises on."""

_lock = threading.Lock()


def record(entry: dict[str, Any]) -> None:
    """Append one JSON line to ``$DRANSPOSE_TEST_RECORD`` (no-op when it is not set)."""
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    line = json.dumps(entry) + "\n"
    with _lock, open(path, "a", encoding="utf8") as fh:
        fh.write(line)


def read_records(path: str) -> list[dict[str, Any]]:
    """Every complete record written so far (a line still being written is left out)."""
    try:
        with open(path, encoding="utf8") as fh:
            text = fh.read()
    except FileNotFoundError:
        return []
    lines = text.split("\n")[:-1]  # the last piece has no newline yet or is empty
    return [json.loads(line) for line in lines if line]


def describe_stream(data: Any) -> dict[str, Any]:
    packet = parse(data)
    out: dict[str, Any] = {"htype": packet.htype, "msg_number": packet.msg_number}
    if packet.htype == "image":
        out["frame"] = packet.frame
        out["values"] = packet.data.ravel().tolist()
    return out


class RecordingWorker:
    def __init__(self, state: Any = None, parameters: Any = None, **kwargs: Any) -> None:
        self.name = state.name if state is not None else None
        self.tags = list(state.tags) if state is not None else []
        self.instance = uuid.uuid4().hex

    @staticmethod
    def describe_parameters() -> list[Any]:
        return [IntParameter(name="x", default=0, description="a value results carry")]

    def process_event(self, event: EventData, parameters: Optional[Any] = None) -> dict[str, Any]:
        return {
            "event": event.event_number,
            "worker": self.name,
            "tags": self.tags,
            "instance": self.instance,
            "streams": sorted(event.streams),
            "packets": {name: describe_stream(data) for name, data in event.streams.items()},
            "param": parameters["x"].value if parameters is not None else None,
        }

    def finish(self, parameters: Optional[Any] = None) -> None:
        record({"kind": "worker_finish", "worker": self.name, "instance": self.instance})


class FailingWorker(RecordingWorker):
    """Raises in ``process_event`` for event :data:`FAIL_EVENT`."""

    def process_event(self, event: EventData, parameters: Optional[Any] = None) -> dict[str, Any]:
        if event.event_number == FAIL_EVENT:
            raise ValueError(f"refusing event {event.event_number} on purpose")
        return super().process_event(event, parameters)


class RecordingReducer:
    def __init__(self, parameters: Any = None, **kwargs: Any) -> None:
        self.instance = uuid.uuid4().hex
        self.publish: dict[str, Any] = {"results": [], "finished": False}
        record({"kind": "reducer_init", "instance": self.instance})

    @staticmethod
    def describe_parameters() -> list[Any]:
        return [StrParameter(name="label", default="", description="a reducer-side parameter")]

    def process_result(self, result: ResultData, parameters: Optional[Any] = None) -> None:
        entry = {
            "kind": "result",
            "instance": self.instance,
            "event": result.event_number,
            "worker": result.worker,
            "parameters_hash": result.parameters_hash,
            "payload": result.payload,
        }
        self.publish["results"].append(entry)
        record(entry)

    def finish(self, parameters: Optional[Any] = None) -> None:
        self.publish["finished"] = True
        record({"kind": "reducer_finish", "instance": self.instance,
                "results": len(self.publish["results"])})


class SlowFinishWorker(RecordingWorker):
    """``worker1`` takes a while in ``finish`` (writing a file, say); the others are quick."""

    FINISH_SECONDS = 0.5

    def finish(self, parameters: Optional[Any] = None) -> None:
        if self.name == "worker1":
            time.sleep(self.FINISH_SECONDS)
        super().finish(parameters)

"""Payloads that record exactly what the runtime handed them.

The worker returns, per event, what it saw (event number, its own name and tags, the streams and
the decoded STINS packets, the value of parameter ``x``). The reducer keeps every result in
``self.publish`` and appends one JSON line per call to the file named by ``$DRANSPOSE_TEST_RECORD``
(when set), so a test reads exactly what the reducer received and when ``finish`` ran. Worker
``finish`` calls are recorded in the same file. Each payload instance has its own ``instance`` id:
the runtime makes new instances for every scan.

:class:`ProtocolRecordingWorker` works for every protocol: per event and stream it records the
stream type, a hash of each frame and a :func:`fingerprint` of what the protocol's parser yields.
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
        record(
            {
                "kind": "reducer_finish",
                "instance": self.instance,
                "results": len(self.publish["results"]),
            }
        )


class SlowFinishWorker(RecordingWorker):
    """``worker1`` takes a while in ``finish`` (writing a file, say); the others are quick."""

    FINISH_SECONDS = 0.5

    def finish(self, parameters: Optional[Any] = None) -> None:
        if self.name == "worker1":
            time.sleep(self.FINISH_SECONDS)
        super().finish(parameters)


# -- any protocol ---------------------------------------------------------------------------------


def fingerprint(value: Any) -> Any:
    """A JSON value standing for ``value`` exactly: arrays by shape, dtype and a hash of their
    bytes, non-finite floats as text (NaN never equals itself), models by class and fields."""
    import datetime
    import hashlib
    import math

    import numpy as np
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return {
            "class": type(value).__name__,
            "fields": {name: fingerprint(v) for name, v in value},
        }
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {
            "shape": list(data.shape),
            "dtype": data.dtype.str,
            "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
        }
    if isinstance(value, np.generic):
        return fingerprint(value.item())
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): fingerprint(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [fingerprint(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return {"repr": repr(value)}


def frame_hash(frame: Any) -> str:
    import hashlib

    raw = frame.bytes if hasattr(frame, "bytes") else bytes(frame)
    return hashlib.sha256(raw).hexdigest()


class StreamParsers:
    """The parser of every stream type, one per payload instance (position capture's is
    stateful: it needs the header of the acquisition before its samples)."""

    def __init__(self) -> None:
        from dranspose.middlewares import (
            albaem,
            contrast,
            eiger_legacy,
            lecroy,
            pcap,
            sardana,
            stream1,
            xspress,
        )
        from dranspose.middlewares.positioncap import PositioncapParser

        self.by_typ = {
            "STINS": stream1.parse,
            "EIGER_LEGACY": eiger_legacy.parse,
            "xspress": xspress.parse,
            "contrast": contrast.parse,
            "PCAP": pcap.parse,
            "albaem": albaem.parse,
            "lecroy": lecroy.parse,
            "sardana": sardana.parse,
            "PCAP_RAW": PositioncapParser().parse,
        }

    def describe(self, data: Any) -> dict[str, Any]:
        """The stream's type, a hash per frame, and the fingerprint of what its parser yields."""
        parser = self.by_typ.get(data.typ)
        try:
            packet = fingerprint(parser(data)) if parser is not None else None
        except ValueError as exc:  # ParseError: recorded, so a test sees what failed
            packet = {"error": str(exc)}
        return {"typ": data.typ, "frames": [frame_hash(f) for f in data.frames], "packet": packet}


class ProtocolRecordingWorker(RecordingWorker):
    """Records, per event, every stream's frames (hashes) and its parsed packet (fingerprint)."""

    def __init__(self, state: Any = None, parameters: Any = None, **kwargs: Any) -> None:
        super().__init__(state, parameters, **kwargs)
        self.parsers = StreamParsers()

    def process_event(self, event: EventData, parameters: Optional[Any] = None) -> dict[str, Any]:
        return {
            "event": event.event_number,
            "worker": self.name,
            "streams": {
                name: self.parsers.describe(data) for name, data in sorted(event.streams.items())
            },
        }

"""Payload classes written in the styles of real beamline payloads for the original dranspose.

They are what a beamline has in its payload repository today: constructors with different
signatures, ``process_event`` with ``*args``/``**kwargs`` or a ``tick`` flag, ``timer(self)``
without parameters, reducers publishing nested dicts with ``<key>_attrs`` attribute dicts, numpy
structured arrays grown with ``np.append``, empty lists and scalars. Nothing here may use an API
that the original did not have.
"""

from __future__ import annotations

import threading

import numpy as np
import zmq

from dranspose.data.stream1 import Stream1Data, Stream1End, Stream1Start
from dranspose.event import EventData, InternalWorkerMessage, StreamData
from dranspose.middlewares.stream1 import parse
from dranspose.parameters import BoolParameter, IntParameter, StrParameter

ROWS = IntParameter(name="rows", default=10, description="image rows summed")


def _image_sum(event, rows):
    """The sum over the first ``rows`` rows of an image event, ``None`` for other packets."""
    if "xrd" not in event.streams:
        return None
    packet = parse(event.streams["xrd"])
    if isinstance(packet, Stream1Data):
        return {"event": event.event_number, "sum": float(packet.data[:rows].sum())}
    if isinstance(packet, Stream1Start):
        return {"event": event.event_number, "start": packet.filename}
    if isinstance(packet, Stream1End):
        return {"event": event.event_number, "end": True}
    return None


class ParamsContextKwWorker:
    """``__init__(self, parameters, context, **kwargs)`` and ``process_event(event,
    parameters=None, *args, **kwargs)``: the style of the original's tutorial."""

    def __init__(self, parameters, context, **kwargs):
        self.state = kwargs.get("state")
        self.context = context

    @staticmethod
    def describe_parameters():
        return [ROWS]

    def process_event(self, event: EventData, parameters=None, *args, **kwargs):
        return _image_sum(event, parameters["rows"].value)


class KwOnlyWorker:
    """``__init__(self, **kwargs)`` and ``process_event(event, parameters, tick=False)``."""

    def __init__(self, **kwargs):
        self.parameters = kwargs["parameters"]

    def process_event(self, event, parameters, tick=False):
        result = _image_sum(event, parameters["rows"].value)
        if result is not None:
            result["tick"] = bool(tick)
        return result


class StarArgsWorker:
    """``__init__(self, *args, **kwargs)``."""

    def __init__(self, *args, **kwargs):
        self.kwargs = sorted(kwargs)

    def process_event(self, event, parameters=None):
        return _image_sum(event, parameters["rows"].value)


class DefaultParamsWorker:
    """``__init__(self, parameters=None, *args, **kwargs)``."""

    def __init__(self, parameters=None, *args, **kwargs):
        assert parameters is not None, "dranspose passes the parameters"

    def process_event(self, event, parameters=None, *args, **kwargs):
        return _image_sum(event, parameters["rows"].value)


class CollectingReducer:
    """Publishes what beamline reducers publish: nested groups with ``_attrs`` dicts, a numpy
    structured array grown with ``np.append``, an empty list, scalars, and a timer without
    parameters."""

    @staticmethod
    def describe_parameters():
        # declared by the reducer: the workers that do not declare it still read its value
        return [ROWS]

    def __init__(self, parameters=None, context=None, **kwargs):
        self.publish_rlock = threading.RLock()
        self.publish = {
            "map": {
                "sums": [],
                "events": [],
                "sums_attrs": {"units": "counts", "long_name": "ROI"},
            },
            "map_attrs": {"NX_class": "NXdata", "signal": "sums"},
            "table": np.zeros((0,), dtype=[("event", "<i8"), ("sum", "<f8")]),
            "empty": [],
            "count": 0,
            "ratio": 0.0,
            "label": "",
            "timer_calls": 0,
            "finished": False,
        }

    def process_result(self, result, parameters=None):
        payload = result.payload
        with self.publish_rlock:
            if "sum" in payload:
                self.publish["map"]["sums"].append(payload["sum"])
                self.publish["map"]["events"].append(payload["event"])
                row = np.array(
                    [(payload["event"], payload["sum"])], dtype=self.publish["table"].dtype
                )
                self.publish["table"] = np.append(self.publish["table"], row)
                self.publish["count"] += 1
            elif "start" in payload:
                self.publish["label"] = str(payload["start"])

    def timer(self):
        self.publish["timer_calls"] += 1
        return 0.05

    def finish(self, parameters=None):
        count = self.publish["count"]
        self.publish["ratio"] = count / max(count + 2, 1)  # 2 non-image events: header and end
        self.publish["finished"] = True


class RepublishingWorker:
    """Keeps a ZMQ socket in ``context`` (created on first use, shared by later calls) and
    republishes every event's raw frames to a downstream PULL socket."""

    target = "tcp://127.0.0.1:0"

    def __init__(self, parameters=None, context=None, **kwargs):
        self.context = context

    def process_event(self, event, parameters=None):
        if "socket" not in self.context:
            sock = zmq.Context.instance().socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 2000)
            sock.connect(parameters["target"].value)
            self.context["socket"] = sock
        frames = [bytes(f.bytes if hasattr(f, "bytes") else f) for f in event.streams["xrd"].frames]
        self.context["socket"].send_multipart([str(event.event_number).encode(), *frames])
        return {"event": event.event_number, "frames": len(frames)}

    def finish(self, parameters=None):
        sock = self.context.pop("socket", None)
        if sock is not None:
            sock.close()

    @staticmethod
    def describe_parameters():
        return [StrParameter(name="target", default="tcp://127.0.0.1:1")]


class CountingReducer:
    def __init__(self, **kwargs):
        self.publish = {"events": []}

    def process_result(self, result, parameters=None):
        self.publish["events"].append(result.payload["event"])


class MessageSource:
    """``get_source_generators()`` yielding ``InternalWorkerMessage``s, as a replay source.

    Stream ``a`` sends event 2 twice (an upstream that repeated a frame); stream ``b`` only has
    even events."""

    def get_source_generators(self):
        def stream_a():
            for number in (0, 1, 2, 2, 3):
                yield InternalWorkerMessage(
                    event_number=number,
                    streams={"a": StreamData(typ="raw", frames=[f"a{number}".encode()])},
                )

        def stream_b():
            for number in (0, 2):
                yield InternalWorkerMessage(
                    event_number=number,
                    streams={"b": StreamData(typ="raw", frames=[f"b{number}".encode()])},
                )

        return [stream_a(), stream_b()]


class StreamsWorker:
    def process_event(self, event, parameters=None):
        return {
            "event": event.event_number,
            "streams": {
                name: [bytes(f) for f in data.frames] for name, data in event.streams.items()
            },
        }


class StreamsReducer:
    def __init__(self, parameters=None, context=None):
        self.publish = {"seen": []}
        self.results = []
        StreamsReducer.last = self

    def process_result(self, result, parameters=None):
        self.results.append(result.payload)
        self.publish["seen"].append(result.payload["event"])


class ParameterEcho:
    """Reads declared parameters by ``.value`` and undeclared ones with ``"x" in parameters`` and
    ``parameters["x"].data``, as payloads of the original do."""

    def __init__(self, parameters=None, context=None, **kwargs):
        pass

    @staticmethod
    def describe_parameters():
        return [ROWS, BoolParameter(name="flag", default=False)]

    def process_event(self, event, parameters=None, **kwargs):
        return {
            "event": event.event_number,
            "rows": parameters["rows"].value,
            "flag": parameters["flag"].value,
            "has_extra": "extra" in parameters,
            "extra": parameters["extra"].data if "extra" in parameters else None,
            "has_missing": "missing" in parameters,
        }


class EchoReducer:
    def __init__(self, parameters=None, **kwargs):
        self.publish = {"results": []}
        EchoReducer.last = self

    def process_result(self, result, parameters=None):
        self.publish["results"].append(result.payload)

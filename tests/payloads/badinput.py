"""Payload of the bad-input campaign: one parameter of every type, a varied ``publish`` tree, and
a worker that parses its STINS frames, so a malformed frame fails exactly its own event.
"""

import numpy as np

from dranspose.middlewares.stream1 import parse as parse_stins
from dranspose.parameters import (
    BinaryParameter,
    BoolParameter,
    FloatParameter,
    IntParameter,
    StrParameter,
)


class ParsingWorker:
    @staticmethod
    def describe_parameters():
        return [
            IntParameter(name="count", default=3, description="an integer"),
            FloatParameter(name="threshold", default=0.5),
            StrParameter(name="label", default="demo"),
            BoolParameter(name="enabled", default=True),
            BinaryParameter(name="mask", default=b"\x00\x01"),
        ]

    def process_event(self, event, parameters=None):
        packet = parse_stins(event.streams["xrd"])
        return type(packet).__name__, getattr(packet, "frame", None)


class TreeReducer:
    def __init__(self):
        self.publish = {
            "packets": [],
            "image": np.arange(12, dtype=np.uint16).reshape(3, 4),
            "info": {
                "name": "demo",
                "ratio": np.float64(0.5),
                "missing": float("nan"),
                "nested": {"list": [1, 2.5, "x"], "empty": []},
            },
            "scalar": 7,
            "text": "hello",
        }

    def process_result(self, result, parameters=None):
        self.publish["packets"].append(result.payload)

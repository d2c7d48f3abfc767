"""A payload whose reducer publishes a small HDF5-like tree: image sums per event, attributes,
a scalar and a string, for reading the live tree with HDF5 clients (h5pyd, silx)."""

import numpy as np

from dranspose.data.stream1 import Stream1Data
from dranspose.middlewares.stream1 import parse


class SumWorker:
    def process_event(self, event, parameters=None):
        stream = event.streams.get("xrd")
        if stream is None:
            return None
        packet = parse(stream)
        if isinstance(packet, Stream1Data):
            return float(packet.data.sum())
        return None


class TreeReducer:
    def __init__(self, *args, **kwargs):
        self.sums = {}
        self.publish = {
            "title": "image sums",
            "map": {"sums": np.zeros(0), "sums_attrs": {"units": "counts"}},
            "events": 0,
        }

    def process_result(self, result, parameters=None):
        self.sums[result.event_number] = result.payload
        numbers = sorted(self.sums)
        self.publish["map"]["sums"] = np.array([self.sums[n] for n in numbers])
        self.publish["events"] = len(numbers)

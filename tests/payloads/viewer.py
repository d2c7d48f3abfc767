"""A replay payload for the H5Web viewer tests and bench: a tree with a growing 1-d dataset,
an image, attributes by the ``<key>_attrs`` convention and a NeXus NXdata group.

Every value is a function of the event numbers seen, so tests compute what the viewer must
show on their own (:func:`expected`). ``ViewerSource.events`` sets the scan's length.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from dranspose.core.event import InternalWorkerMessage, StreamData
from dranspose.http.h5rest import GrowingBuffer

IMAGE_SHAPE = (48, 64)


def image_of(n: int) -> np.ndarray:
    """The image after ``n`` events: a ramp plus a bump that moves with ``n``."""
    y, x = np.mgrid[0 : IMAGE_SHAPE[0], 0 : IMAGE_SHAPE[1]].astype(np.float32)
    cx = (n * 3) % IMAGE_SHAPE[1]
    return (x + 2 * y + 100 * np.exp(-((x - cx) ** 2 + (y - 24) ** 2) / 60)).astype(np.float32)


def sum_of(event: int) -> float:
    return float(event) * 0.5 + 1.0


class ViewerSource:
    """Events 0 .. events-1 carrying nothing but their number."""

    events = 60

    def get_source_generators(self):
        def gen():
            for i in range(self.events):
                yield InternalWorkerMessage(
                    event_number=i, streams={"s": StreamData(typ="t", frames=[b"x"])}
                )

        return [gen()]


class ViewerWorker:
    def process_event(self, event, parameters=None):
        return event.event_number


class ViewerReducer:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.publish_rlock = threading.RLock()
        self.publish = {
            "_attrs": {"NX_class": "NXroot", "default": "entry"},
            "sums": GrowingBuffer(np.float64),
            "sums_attrs": {"units": "counts", "long_name": "frame sum"},
            "image": image_of(0),
            "image_attrs": {"interpretation": "image"},
            "small": np.arange(12, dtype=np.int32).reshape(3, 4) * 7,
            "title": "viewer test scan",
            "entry": {
                "_attrs": {"NX_class": "NXentry", "default": "plot"},
                "plot": {
                    "_attrs": {"NX_class": "NXdata", "signal": "intensity", "axes": "position"},
                    "intensity": GrowingBuffer(np.float64),
                    "position": GrowingBuffer(np.float64),
                },
            },
        }
        self.seen = 0

    def process_result(self, result, parameters=None):
        event = result.payload
        with self.publish_rlock:
            self.publish["sums"][event] = sum_of(event)
            plot = self.publish["entry"]["plot"]
            plot["position"][event] = event * 0.1
            plot["intensity"][event] = np.sin(event * 0.2)
            self.seen += 1
            self.publish["image"] = image_of(self.seen)

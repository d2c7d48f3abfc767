"""The analysis tutorial's worker: mean intensity of a region of interest per image.

The region is ``data[:till_x, from_y:]``; both bounds are run-time parameters.
"""

import logging
from dataclasses import dataclass

import numpy as np

from dranspose.data.stream1 import Stream1Data, Stream1Start
from dranspose.middlewares.stream1 import parse as parse_stins
from dranspose.parameters import IntParameter

logger = logging.getLogger(__name__)


@dataclass
class Start:
    """Sent once per worker at the start of a series: where the raw data is written."""

    filename: str


@dataclass
class Result:
    """The essence of one image, small enough for the reducer."""

    intensity: float


class TestWorker:
    def __init__(self, *args, **kwargs):
        pass

    @staticmethod
    def describe_parameters():
        return [
            IntParameter(name="till_x", description="ROI rows: [0, till_x)", default=2),
            IntParameter(name="from_y", description="ROI columns: [from_y, end)", default=8),
        ]

    def process_event(self, event, *args, parameters=None, **kwargs):
        if "xrd" not in event.streams:
            return None
        acq = parse_stins(event.streams["xrd"])
        if isinstance(acq, Stream1Start):
            logger.info("start message %s", acq)
            return Start(acq.filename)
        if isinstance(acq, Stream1Data):
            roi = acq.data[: parameters["till_x"].value, parameters["from_y"].value :]
            intensity = float(np.mean(roi))
            logger.debug("intensity is %f", intensity)
            return Result(intensity)
        return None

import logging
from dataclasses import dataclass
import numpy as np

from dranspose.middlewares.stream1 import parse as parse_stins
from dranspose.data.stream1 import Stream1Data, Stream1Start, Stream1End
from dranspose.parameters import IntParameter

logger = logging.getLogger(__name__)

@dataclass
class Start:
    filename: str

@dataclass
class Result:
    intensity: float

class TestWorker:
    def __init__(self, *args, **kwargs):
        pass

    @staticmethod
    def describe_parameters():
        params = [
            IntParameter(name="till_x", default=2),
            IntParameter(name="from_y", default=8),
        ]
        return params

    def process_event(self, event, *args, parameters=None, **kwargs):
        logger.debug(event)
        if "xrd" in event.streams:
            acq = parse_stins(event.streams["xrd"])
            if isinstance(acq, Stream1Start):
                logger.info("start message %s", acq)
                return Start(acq.filename)
            elif isinstance(acq, Stream1Data):
                intensity = np.mean(acq.data[:parameters["till_x"].value,parameters["from_y"].value:])
                logger.debug("intensity is %f", intensity)
                return Result(intensity)

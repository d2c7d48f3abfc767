import logging
from dranspose.middlewares.stream1 import parse as parse_stins

logger = logging.getLogger(__name__)

class TestWorker:

    def __init__(self, *args, **kwargs):
        pass

    def process_event(self, event, *args, parameters=None, **kwargs):
        if "xrd" in event.streams:
            acq = parse_stins(event.streams["xrd"])
            logger.debug("acquisition is %s", acq)

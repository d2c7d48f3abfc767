import logging

logger = logging.getLogger(__name__)

class TestWorker:

    def __init__(self, *args, **kwargs):
        pass

    def process_event(self, event, *args, parameters=None, **kwargs):
        logger.debug("event is %s", event)

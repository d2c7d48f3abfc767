import logging

logger = logging.getLogger(__name__)

class TestReducer:

    def __init__(self, *args, **kwargs):
        pass

    def process_result(self, result, parameters=None):
        logger.debug("result is %s", result)

import logging

logger = logging.getLogger(__name__)

class TestReducer:
    def __init__(self, *args, **kwargs):
        self.evolution = [0]
        self.last_value = 0

    def process_result(self, result, parameters=None):
        if result.event_number > (len(self.evolution) - 1):
            self.evolution += [None] * (1 + result.event_number - len(self.evolution))
        self.evolution[result.event_number] = result.payload - self.evolution
        self.last_value = result.payload.intensity
        
    def finish(self, parameters=None):
        logger.info("delta were %s", self.evolution)

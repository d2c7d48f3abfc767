# src/worker.py
class TestWorker:
    def __init__(self, *args, **kwargs):
        pass
    
    def process_event(self, event, *args, parameters=None, **kwargs):
        pass

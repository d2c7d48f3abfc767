# src/reducer.py
class TestReducer:

    def __init__(self, *args, **kwargs):
        pass
    
    def process_result(self, result, parameters=None):
        pass

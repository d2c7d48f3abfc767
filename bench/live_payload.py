"""Payload for bench/live.py: the reducer publishes one 1000x1000 float32 image."""

import numpy as np

SHAPE = (1000, 1000)
SEED = 7


def bench_image() -> np.ndarray:
    return np.random.default_rng(SEED).random(SHAPE, dtype=np.float32)


class LiveWorker:
    def process_event(self, event):
        return None


class LiveReducer:
    def __init__(self, *args, **kwargs):
        self.publish = {"image": bench_image()}

    def process_result(self, result):
        pass

"""A deliberately slow worker that sums each STINS image; a reducer that keeps the sums by frame."""

import os
import time

from dranspose.data.stream1 import Stream1Data
from dranspose.middlewares.stream1 import parse


class SlowSumWorker:
    def process_event(self, event):
        stream = event.streams.get("det")
        if stream is None:
            return None
        packet = parse(stream)
        if not isinstance(packet, Stream1Data):
            return None
        time.sleep(float(os.environ.get("FRAME_SUMS_SECONDS", "0.02")))
        return packet.frame, int(packet.data.sum(dtype="int64"))


class SumsReducer:
    def __init__(self):
        self.publish = {"sums": {}}

    def process_result(self, result):
        frame, total = result.payload
        self.publish["sums"][frame] = total

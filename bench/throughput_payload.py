"""Trivial payload for bench/throughput.py: forwards the source's send time, keeps latencies."""

import json
import threading
import time

# latencies kept per scan at most: a 10^6-event scan must not grow the reducer without bound,
# and the last 100,000 events give the percentiles as well as all of them would
KEEP = 100_000


class BenchWorker:
    def process_event(self, event):
        stream = event.streams.get("bench")
        if stream is None or len(stream.frames) < 2:
            return None
        header = json.loads(bytes(stream.frames[0]))
        return header.get("t_send")


class BenchReducer:
    def __init__(self):
        self.publish_rlock = threading.RLock()
        self.publish = {"latency": [], "results": 0}

    def process_result(self, result):
        now = time.time()
        with self.publish_rlock:
            latency = self.publish["latency"]
            if len(latency) >= KEEP:  # a ring: overwrite the oldest
                latency[self.publish["results"] % KEEP] = now - result.payload
            else:
                latency.append(now - result.payload)
            self.publish["results"] += 1

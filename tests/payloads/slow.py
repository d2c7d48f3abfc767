"""A worker that takes its time, so a test can kill it mid-scan; a reducer that counts."""

import json
import os
import time


class SlowWorker:
    def process_event(self, event):
        time.sleep(float(os.environ.get("SLOW_WORKER_SECONDS", "0.02")))
        return event.event_number


class CountingReducer:
    def __init__(self, context=None):
        self.context = context if context is not None else {}
        self.publish = {"events": [], "redelivered": [], "finished": False}

    def process_result(self, result):
        time.sleep(float(os.environ.get("SLOW_REDUCER_SECONDS", "0")))
        self.publish["events"].append(result.event_number)
        if getattr(result, "redelivered", False):
            self.publish["redelivered"].append(result.event_number)

    def finish(self):
        self.publish["finished"] = True
        path = os.environ.get("COUNTING_REDUCER_OUT")
        if path:
            with open(path, "a") as fh:
                fh.write(json.dumps(sorted(self.publish["events"])) + "\n")
            with open(path + ".summary", "a") as fh:
                fh.write(json.dumps(self.context.get("scan_summary")) + "\n")
            with open(path + ".redelivered", "a") as fh:
                fh.write(json.dumps(sorted(self.publish["redelivered"])) + "\n")

"""A worker that logs a warning for every event and fails every event number ``3k + 2``.

Used by the observability tests: its records must show up in ``/api/v1/logs`` under the worker's
name, and its failures in the failed-events counter.
"""

import logging

logger = logging.getLogger("tests.payloads.noisy")


def fails(event_number: int) -> bool:
    return event_number % 3 == 2


class NoisyWorker:
    def process_event(self, event):
        logger.warning("noisy event %d", event.event_number)
        if fails(event.event_number):
            raise ValueError(f"event {event.event_number} is made to fail")
        return event.event_number


class ListReducer:
    def __init__(self):
        self.publish = {"events": []}

    def process_result(self, result):
        self.publish["events"].append(result.event_number)

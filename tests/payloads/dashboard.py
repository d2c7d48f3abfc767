"""A paced worker with one parameter of every type, and a reducer that shows what workers used.

The dashboard test edits parameters in the page and needs to see a real effect: every result
carries the ``factor`` its worker computed with, and the reducer publishes, per worker, the factor
of that worker's latest result (``publish["factor_by_worker"]``).
"""

from __future__ import annotations

import os
import time
from typing import Any

from dranspose.parameters import (
    BinaryParameter,
    BoolParameter,
    FloatParameter,
    IntParameter,
    StrParameter,
)

SECONDS_ENV = "DASHBOARD_WORKER_SECONDS"


class PacedWorker:
    def __init__(self, state: Any = None, **kwargs: Any) -> None:
        self.name = state.name if state is not None else None
        self.seconds = float(os.environ.get(SECONDS_ENV, "0.01"))

    @staticmethod
    def describe_parameters() -> list[Any]:
        return [
            IntParameter(name="factor", default=1, description="multiplies every event number"),
            FloatParameter(name="threshold", default=0.5, description="a float to edit"),
            StrParameter(name="label", default="none", description="a text to edit"),
            BoolParameter(name="enabled", default=False, description="a switch to edit"),
            BinaryParameter(name="mask", default=b"", description="a file to upload"),
        ]

    def process_event(self, event: Any, parameters: Any) -> dict[str, Any]:
        time.sleep(self.seconds)
        factor = parameters["factor"].value
        return {"worker": self.name, "factor": factor, "value": event.event_number * factor}


class FactorReducer:
    def __init__(self, **kwargs: Any) -> None:
        self.publish: dict[str, Any] = {"factor_by_worker": {}, "results": 0}

    def process_result(self, result: Any) -> None:
        self.publish["factor_by_worker"][result.payload["worker"]] = result.payload["factor"]
        self.publish["results"] += 1

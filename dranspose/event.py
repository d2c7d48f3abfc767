"""``dranspose.event``: a public import path kept for payloads; the code lives in
:mod:`dranspose.core.event`."""

from dranspose.core.event import (
    DuplicateStreamError,
    EventData,
    Frame,
    InternalWorkerMessage,
    ResultData,
    StreamData,
)

__all__ = [
    "DuplicateStreamError",
    "EventData",
    "Frame",
    "InternalWorkerMessage",
    "ResultData",
    "StreamData",
]

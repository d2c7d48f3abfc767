"""``dranspose.event``: a public import path kept for payloads; the code lives in
:mod:`dranspose.core.event`."""

from dranspose.core.event import (  # noqa: F401
    Frame,
    StreamData,
    InternalWorkerMessage,
    DuplicateStreamError,
    EventData,
    ResultData,
)

__all__ = [
    "Frame",
    "StreamData",
    "InternalWorkerMessage",
    "DuplicateStreamError",
    "EventData",
    "ResultData",
]

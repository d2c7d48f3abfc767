"""``dranspose.event``: a public import path kept for payloads; the models live in
:mod:`dranspose.core.event`, the capture files' CBOR hooks in :mod:`dranspose.io.capture_tags`."""

from dranspose.core.event import (
    DuplicateStreamError,
    EventData,
    Frame,
    InternalWorkerMessage,
    ResultData,
    StreamData,
)
from dranspose.core.protocol import Digest as HashDigest
from dranspose.core.protocol import EventNumber, StreamName, WorkerName
from dranspose.io.capture_tags import message_encoder, message_tag_hook

__all__ = [
    "DuplicateStreamError",
    "EventData",
    "EventNumber",
    "Frame",
    "HashDigest",
    "InternalWorkerMessage",
    "ResultData",
    "StreamData",
    "StreamName",
    "WorkerName",
    "message_encoder",
    "message_tag_hook",
]

"""``dranspose.middlewares.positioncap``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.positioncap.parser`."""

from dranspose.protocols.positioncap.parser import (
    CAPTURE_REQUEST,
    Kind,
    MessageSplitter,
    ParseError,
    PositioncapParser,
    check_reply,
    message_kind,
    split_messages,
)

__all__ = [
    "CAPTURE_REQUEST",
    "Kind",
    "MessageSplitter",
    "ParseError",
    "PositioncapParser",
    "check_reply",
    "message_kind",
    "split_messages",
]

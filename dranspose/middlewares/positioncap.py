"""``dranspose.middlewares.positioncap``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.positioncap.parser`."""

from dranspose.protocols.positioncap.parser import (  # noqa: F401
    CAPTURE_REQUEST,
    Kind,
    split_messages,
    MessageSplitter,
    message_kind,
    check_reply,
    PositioncapParser,
    ParseError,
)

__all__ = [
    "CAPTURE_REQUEST",
    "Kind",
    "split_messages",
    "MessageSplitter",
    "message_kind",
    "check_reply",
    "PositioncapParser",
    "ParseError",
]

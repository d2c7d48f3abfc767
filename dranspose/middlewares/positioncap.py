"""``dranspose.middlewares.positioncap``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.positioncap.parser`. The packet names and ``StreamData`` are re-exported
because the original dranspose's module imported them and payloads import them from here."""

from dranspose.core.event import StreamData
from dranspose.protocols.positioncap.packets import (
    PositionCapEnd,
    PositionCapField,
    PositionCapPacketType,
    PositionCapStart,
    PositionCapValues,
)
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
    "PositionCapEnd",
    "PositionCapField",
    "PositionCapPacketType",
    "PositionCapStart",
    "PositionCapValues",
    "PositioncapParser",
    "StreamData",
    "check_reply",
    "message_kind",
    "split_messages",
]

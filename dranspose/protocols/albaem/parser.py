"""Parser for AlbaEM electrometer streams: :func:`parse` turns a ``StreamData`` into a packet.

An AlbaEM message is one frame of JSON. It is decoded with pydantic-core's JSON parser and
validated by the packet model in one pass, which also checks that every ``channelN`` reading is a
number (see :mod:`dranspose.protocols.albaem.packets`). A message of more than one frame is refused rather
than half understood.
"""

from __future__ import annotations

from typing import Optional, Union

from dranspose.core.event import StreamData
from dranspose.protocols.albaem.packets import AlbaemData, AlbaemEnd, AlbaemStart
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.json_header import parse_single_json_message
from dranspose.protocols.common.stream_argument import stream_argument

__all__ = ["ParseError", "parse"]

_Packet = Union[AlbaemStart, AlbaemData, AlbaemEnd]
_PACKETS: dict[str, type[_Packet]] = {
    "series-start": AlbaemStart,
    "data": AlbaemData,
    "series-end": AlbaemEnd,
}


def parse(
    data: Optional[StreamData] = None, *, stream_data: Optional[StreamData] = None
) -> _Packet:
    """Decode one AlbaEM message into :class:`AlbaemStart`, :class:`AlbaemData` or
    :class:`AlbaemEnd`.

    Raises :class:`ParseError` naming the stream type, the frame and what was expected when the
    frames are not a valid AlbaEM message. Any ``typ`` is accepted: only the frames matter.
    """
    return parse_single_json_message(stream_argument(data, stream_data, "albaem.parse"), _PACKETS)

"""Parser for PandA position capture ("pcap") streams: :func:`parse` turns a ``StreamData`` into a
packet.

A pcap message is one frame of JSON. It is decoded with pydantic-core's JSON parser and validated
by the packet model in one pass; the captured fields of a data message become 1-D numpy arrays
there (see :mod:`dranspose.protocols.pcap.packets`). The device never sends binary frames, so a message of
more than one frame is refused rather than half understood.
"""

from __future__ import annotations

from typing import Optional, Union

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.json_header import parse_single_json_message
from dranspose.protocols.common.stream_argument import stream_argument
from dranspose.protocols.pcap.packets import PCAPData, PCAPEnd, PCAPStart

__all__ = ["ParseError", "parse"]

_Packet = Union[PCAPStart, PCAPData, PCAPEnd]
_PACKETS: dict[str, type[_Packet]] = {
    "series-start": PCAPStart,
    "data": PCAPData,
    "series-end": PCAPEnd,
}


def parse(
    data: Optional[StreamData] = None, *, stream_data: Optional[StreamData] = None
) -> _Packet:
    """Decode one pcap message into :class:`PCAPStart`, :class:`PCAPData` or
    :class:`PCAPEnd`.

    Raises :class:`ParseError` naming the stream type, the frame and what was expected when the
    frames are not a valid pcap message. Any ``typ`` is accepted: only the frames matter.
    """
    return parse_single_json_message(stream_argument(data, stream_data, "pcap.parse"), _PACKETS)

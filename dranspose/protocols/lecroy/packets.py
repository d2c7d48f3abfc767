"""Packets of the LeCroy oscilloscope stream (the MAUI Tango device's ZMQ PUB socket).

The device publishes JSON-headed messages; ``htype`` tells control messages from traces:

* ``"msg"`` messages are one frame; ``what`` says which: 0 :class:`LecroyPrepare` (a run is
  armed), 1 :class:`LecroySeqStart` (a sequence of ``ntriggers`` triggers on ``channels``
  begins; ``ntriggers`` is -1 in continuous mode), 2 :class:`LecroySeqEnd` (the traces of one
  sequence are all sent), 3 :class:`LecroyEnd` (the run stopped after ``frames`` trace
  messages).
* ``"traces"`` messages are three frames, one message per channel: the JSON header
  (:class:`LecroyData`), the waveforms as raw ``dtype`` values of ``shape``
  ``[triggers, points]``, and a pickled list with one timestamp per trigger.

``frame`` counts trace messages: a sequence end carries the count so far, the stop message the
total. In sequential mode every sequence starts with its own :class:`LecroySeqStart` (``seqno``
counting up) and a trace holds all ``ntriggers`` triggers; in continuous mode a single
:class:`LecroySeqStart` opens the run and each trigger is a sequence of one-row traces closed by
a :class:`LecroySeqEnd`.

:func:`dranspose.protocols.lecroy.parser.parse` returns the control packets as they are and turns
trace messages into a :class:`LecroyParsed`: the headers, the waveforms as numpy arrays and the
timestamps. It also accepts a sequence start, the traces of all channels and a sequence end
forwarded as one message, as the original dranspose ingester groups them. ``to_stream_data``
builds frames for synthetic sources and tests.
"""

from __future__ import annotations

import pickle
from enum import IntEnum
from typing import Annotated, Any, Final, Literal, Optional, Union

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dranspose.core.event import StreamData

LECROY_TYPE = "lecroy_9fwdWp6Rq7"
"""The stream type ``to_stream_data`` gives its frames: the original dranspose's value, which its
ingester stamped on LeCroy streams and its parser insisted on, so frames built here parse there
too. Our ingester stamps it as well (payloads compare ``stream.typ`` with it); our parser
accepts any type, as captures of earlier releases of ours say ``"lecroy"``."""

# The values of ``what`` in control messages; Final, so each is its Literal type too.
PREPARE: Final = 0
SEQ_START: Final = 1
SEQ_END: Final = 2
STOP: Final = 3


class WhatEnum(IntEnum):
    """The ``what`` of a control message by name, as the original dranspose spelled them;
    equal to :data:`PREPARE`, :data:`SEQ_START`, :data:`SEQ_END` and :data:`STOP`."""

    PREPARE = PREPARE
    START = SEQ_START
    SEQEND = SEQ_END
    STOP = STOP


class LecroyBase(BaseModel):
    """What every LeCroy packet has: the trace-message counter ``frame``; extras are kept."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    frame: int

    def header_frame(self) -> bytes:
        """The JSON frame of this packet (without waveform or timestamp frames)."""
        return self.model_dump_json().encode()

    def to_stream_data(self, typ: str = LECROY_TYPE) -> StreamData:
        """This packet's JSON frame alone: all the device sends for a control message (a
        trace header's waveforms and timestamps follow in frames of their own, which
        :meth:`LecroyParsed.to_stream_data` builds)."""
        return StreamData(typ=typ, frames=[self.header_frame()])


class LecroyMessage(LecroyBase):
    """A one-frame control message (``htype`` ``"msg"``)."""

    htype: Literal["msg"] = "msg"


class LecroyPrepare(LecroyMessage):
    """A run is prepared; nothing else is announced."""

    what: Literal[0] = PREPARE


class LecroySeqStart(LecroyMessage):
    """A sequence starts: ``ntriggers`` triggers (-1: continuous) recorded on ``channels``."""

    what: Literal[1] = SEQ_START
    ntriggers: int
    seqno: int
    channels: list[int]


class LecroySeqEnd(LecroyMessage):
    """All traces of the current sequence have been sent."""

    what: Literal[2] = SEQ_END


class LecroyEnd(LecroyMessage):
    """The run stopped after ``frames`` trace messages."""

    what: Literal[3] = STOP
    frames: int


class LecroyData(LecroyBase):
    """Header of one channel's trace message.

    The waveforms have ``shape`` ``[triggers, points]`` of ``dtype``; sample ``i`` lies at
    ``horiz_offset + i * horiz_interval`` seconds from the trigger. ``ts`` is the time of the
    first trigger (seconds since the epoch).
    """

    htype: Literal["traces"] = "traces"
    ch: int
    ts: float
    shape: list[int]
    dtype: str
    horiz_offset: float
    horiz_interval: float


class LecroyParsed(LecroyBase):
    """Decoded trace messages: per trace, its header, waveforms and trigger timestamps.

    The lists are parallel, one entry per trace message in the order received: ``channels[i]``
    is ``meta[i].ch``, ``data[i]`` the waveforms of shape ``meta[i].shape`` (one row per
    trigger) and ``timestamps[i]`` one time per row. ``data`` arrays are views of the received
    frames, not copies; they are read-only when the frames are ``bytes``.

    When the message began with a sequence start (as the original dranspose ingester groups a
    sequence), ``start`` is it and ``frame``, ``ntriggers`` and ``seqno`` are copied from it, as
    the original's ``LecroyParsed`` (built from the start) has them; the traces cover exactly its
    channels, and ``end`` is the sequence end when the message included it. A message of traces
    alone has neither, and ``frame`` is the first trace's counter.

    ``htype`` and ``what`` are those of the sequence start the original built this from; the
    lists default to empty so that ``LecroyParsed(frame=..., channels=[...], ...)`` written for
    the original still builds.
    """

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    htype: Literal["msg"] = "msg"
    what: Literal[1] = SEQ_START
    channels: list[int]
    meta: list[LecroyData] = Field(default_factory=list)
    data: list[NDArray[Any]] = Field(default_factory=list, exclude=True)
    timestamps: list[list[float]] = Field(default_factory=list)
    ntriggers: Optional[int] = None
    seqno: Optional[int] = None
    start: Optional[LecroySeqStart] = None
    end: Optional[LecroySeqEnd] = None

    def to_stream_data(self, typ: str = LECROY_TYPE) -> StreamData:
        """The frames of these traces: the sequence start if any, three frames per trace
        (header, waveforms in ``dtype``, timestamps pickled as a list of floats as the device
        does), then the sequence end if any."""
        if not len(self.meta) == len(self.data) == len(self.timestamps):
            raise ValueError(
                f"meta, data and timestamps must have one entry per trace, got "
                f"{len(self.meta)}, {len(self.data)} and {len(self.timestamps)}"
            )
        frames: list[Any] = [self.start.header_frame()] if self.start is not None else []
        for meta, waveforms, times in zip(self.meta, self.data, self.timestamps):
            arr = np.ascontiguousarray(waveforms, dtype=np.dtype(meta.dtype))
            if list(arr.shape) != list(meta.shape):
                raise ValueError(
                    f"channel {meta.ch}: header shape is {meta.shape} but data has shape "
                    f"{list(arr.shape)}"
                )
            frames.append(meta.header_frame())
            frames.append(arr.tobytes())
            frames.append(pickle.dumps([float(t) for t in times], protocol=4))
        if self.end is not None:
            frames.append(self.end.header_frame())
        return StreamData(typ=typ, frames=frames)


LecroyControl = Annotated[
    Union[LecroyPrepare, LecroySeqStart, LecroySeqEnd, LecroyEnd], Field(discriminator="what")
]
"""Any control message, told apart by ``what``."""

LecroyPacketType = Annotated[Union[LecroyControl, LecroyData], Field(discriminator="htype")]
"""The packet a LeCroy JSON frame describes, told apart by ``htype`` and then ``what``."""

LecroyPacketAdapter: TypeAdapter[
    Union[LecroyPrepare, LecroySeqStart, LecroySeqEnd, LecroyEnd, LecroyData]
] = TypeAdapter(LecroyPacketType)

LecroyPacket = LecroyPacketAdapter
"""Validates any packet of the protocol (``LecroyPacket.validate_json(...)``), as in
earlier releases; ``LecroyPacketType`` is the union for annotations."""
"""Validates one JSON frame (a mapping) into the matching packet."""

__all__ = [
    "LECROY_TYPE",
    "PREPARE",
    "SEQ_END",
    "SEQ_START",
    "STOP",
    "LecroyBase",
    "LecroyControl",
    "LecroyData",
    "LecroyEnd",
    "LecroyMessage",
    "LecroyPacket",
    "LecroyPacketAdapter",
    "LecroyPacketType",
    "LecroyParsed",
    "LecroyPrepare",
    "LecroySeqEnd",
    "LecroySeqStart",
    "NDArray",
    "StreamData",
    "WhatEnum",
]

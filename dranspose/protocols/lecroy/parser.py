"""Parser for LeCroy oscilloscope streams: :func:`parse` turns a ``StreamData`` into a packet.

Control messages become their packet. Trace messages become a :class:`LecroyParsed` whose
waveforms are numpy views of the received frames, so a worker pays no copy for the (up to
megabyte-sized) float64 traces. The timestamps frame is a pickle; it is decoded with
:func:`dranspose.protocols.common.safe_pickle.safe_loads`, which cannot run code the sender names,
and must be a list of numbers with one entry per trigger.

Every header is checked before it is used, so a truncated or inconsistent message raises a
:class:`ParseError` naming the frame and what was expected there.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Union

import numpy as np
from pydantic import BaseModel

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.frames import array_dtype, frame_buffer, size_text
from dranspose.protocols.common.json_header import load_json_object, validate
from dranspose.protocols.common.safe_pickle import safe_loads
from dranspose.protocols.common.stream_argument import stream_argument
from dranspose.protocols.lecroy.packets import (
    PREPARE,
    SEQ_END,
    SEQ_START,
    STOP,
    LecroyData,
    LecroyEnd,
    LecroyMessage,
    LecroyParsed,
    LecroyPrepare,
    LecroySeqEnd,
    LecroySeqStart,
)

__all__ = ["ParseError", "parse"]

_CONTROL: dict[int, type[LecroyMessage]] = {
    PREPARE: LecroyPrepare,
    SEQ_START: LecroySeqStart,
    SEQ_END: LecroySeqEnd,
    STOP: LecroyEnd,
}
_KIND = {PREPARE: "prepare", SEQ_START: "sequence start", SEQ_END: "sequence end", STOP: "stop"}
_WHAT = "0 (prepare), 1 (sequence start), 2 (sequence end) or 3 (stop)"
# The header, the waveforms and the timestamps of one channel.
_TRACE_FRAMES = 3

_Packet = Union[LecroyPrepare, LecroySeqStart, LecroySeqEnd, LecroyEnd, LecroyParsed]


def parse(
    data: Optional[StreamData] = None, *, stream_data: Optional[StreamData] = None
) -> _Packet:
    """Decode one LeCroy message, given as ``data`` (the original dranspose's name, by position
    or keyword) or as the keyword ``stream_data``.

    * a one-frame control message gives :class:`LecroyPrepare`, :class:`LecroySeqStart`,
      :class:`LecroySeqEnd` or :class:`LecroyEnd`;
    * one or more three-frame trace messages give a :class:`LecroyParsed`;
    * a sequence start followed by trace messages and optionally a sequence end (one message
      per sequence, as the original dranspose ingester forwards them) gives a
      :class:`LecroyParsed` carrying the start and end.

    Raises :class:`ParseError` naming the stream type, the frame and what was expected. Any
    ``typ`` is accepted: only the frames matter.
    """
    stream = stream_argument(data, stream_data, "lecroy.parse")
    typ = stream.typ
    frames = stream.frames
    if not frames:
        raise ParseError(f"{typ} message has no frames; expected a JSON header in frame 0")
    first = _control_or_trace(typ, frames, 0)
    if isinstance(first, LecroyData):
        return _traces(typ, frames, None, first)
    if len(frames) == 1:
        return first
    if isinstance(first, LecroySeqStart):
        return _traces(typ, frames, first, None)
    raise ParseError(
        f"{typ} message has {len(frames)} frames but frame 0 is a {_kind(first)} message; "
        f"expected exactly one frame, or traces after a sequence start"
    )


def _traces(
    typ: str, frames: Any, start: Optional[LecroySeqStart], first: Optional[LecroyData]
) -> LecroyParsed:
    count = len(frames)
    index = 0 if start is None else 1
    metas: list[LecroyData] = []
    arrays: list[np.ndarray] = []
    times: list[list[float]] = []
    end: Optional[LecroySeqEnd] = None
    while index < count:
        if first is not None and index == 0:
            header: Any = first
        else:
            header = _control_or_trace(typ, frames, index)
        if isinstance(header, LecroyData):
            if index + _TRACE_FRAMES > count:
                raise ParseError(
                    f"{typ} frame {index} (channel {header.ch} trace header): the message ends "
                    f"after {count - index - 1} of the waveform and timestamp frames that "
                    f"follow it; expected {_TRACE_FRAMES} frames per trace"
                )
            waveforms = _waveforms(typ, header, frames[index + 1], index + 1)
            stamps = _timestamps(typ, header, frames[index + 2], index + 2)
            metas.append(header)
            arrays.append(waveforms)
            times.append(stamps)
            index += _TRACE_FRAMES
        elif isinstance(header, LecroySeqEnd) and index == count - 1:
            end = header
            index += 1
        else:
            raise ParseError(
                f"{typ} frame {index}: got a {_kind(header)} message inside a trace message; "
                f"expected a trace header, or a sequence end as the last frame"
            )
    channels = [meta.ch for meta in metas]
    if start is not None and channels != start.channels:
        raise ParseError(
            f"{typ}: the sequence start announces channels {start.channels} but the message "
            f"holds traces of channels {channels}; expected one trace per announced channel"
        )
    return LecroyParsed.model_construct(
        # the start's counter, as the original copies it; without a start, frame 0 was a trace
        frame=metas[0].frame if start is None else start.frame,
        channels=channels,
        meta=metas,
        data=arrays,
        timestamps=times,
        ntriggers=None if start is None else start.ntriggers,
        seqno=None if start is None else start.seqno,
        start=start,
        end=end,
    )


def _control_or_trace(typ: str, frames: Any, index: int) -> Any:
    header = _load_json(typ, frames[index], index)
    htype = header.get("htype")
    if htype == "traces":
        return _validate(typ, index, LecroyData, "trace", header)
    # the original dranspose's LecroyEnd has no htype field, so stop messages it built come
    # without one; no other message does
    if htype == "msg" or ("htype" not in header and header.get("what") == STOP):
        what = header.get("what")
        if type(what) is not int or what not in _CONTROL:
            got = f"what {what!r}" if "what" in header else "no 'what' field"
            raise ParseError(f"{typ} frame {index} (header): {got}; expected what to be {_WHAT}")
        return _validate(typ, index, _CONTROL[what], _KIND[what], header)
    got = f"htype {htype!r}" if "htype" in header else "no 'htype' field"
    raise ParseError(f"{typ} frame {index} (header): {got}; expected htype to be 'msg' or 'traces'")


def _waveforms(typ: str, meta: LecroyData, frame: Any, index: int) -> np.ndarray:
    where = f"{typ} frame {index} (channel {meta.ch} waveforms)"
    shape = meta.shape
    dtype = array_dtype(where, shape, meta.dtype, "'float64'", field="dtype")
    buf = frame_buffer(frame, where)
    if len(buf) != math.prod(shape) * dtype.itemsize:
        raise ParseError(f"{where}: {len(buf)} bytes, expected {size_text(shape, dtype)}")
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


def _timestamps(typ: str, meta: LecroyData, frame: Any, index: int) -> list[float]:
    where = f"{typ} frame {index} (channel {meta.ch} timestamps)"
    value = safe_loads(frame_buffer(frame, where), where)
    if type(value) not in (list, tuple):
        raise ParseError(
            f"{where}: the pickle holds a {type(value).__name__}; expected a list of numbers"
        )
    stamps = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise ParseError(
                f"{where}: the list holds a {type(item).__name__}; expected only numbers"
            )
        stamps.append(float(item))
    rows = meta.shape[0] if meta.shape else 1
    if len(stamps) != rows:
        raise ParseError(
            f"{where}: {len(stamps)} timestamps for waveforms of shape {meta.shape}; expected "
            f"one per trigger ({rows})"
        )
    return stamps


def _load_json(typ: str, frame: Any, index: int) -> dict[str, Any]:
    return load_json_object(
        frame,
        f"{typ} frame {index} (header)",
        "a JSON object with an 'htype' field",
        show_value=True,
        separator=";",
    )


def _validate(typ: str, index: int, cls: type[BaseModel], kind: str, header: dict[str, Any]) -> Any:
    return validate(cls, header, f"{typ} frame {index} (header): invalid {kind} header", "header")


def _kind(packet: Any) -> str:
    return "trace" if isinstance(packet, LecroyData) else _KIND[packet.what]

"""The data plane's messages: their typed headers, and how their frames are packed and cut.

Two messages travel on the data plane (:mod:`dranspose.io.dataplane` owns the sockets): an
ingester's partial events to a worker (header :class:`PartialEventsHeader`) and a worker's
results to the reducer (header :class:`~dranspose.core.coordination.ResultHeader`). Each header is
a pydantic model written and read by both ends, the first frame of its message; the frames or
results follow, small ones packed into one frame (:func:`pack`, :func:`unpack`). Pure: no socket
here, a message is a list of parts.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple, Optional, Sequence, cast

import zmq
from pydantic import BaseModel

from dranspose.core.construct import trusted
from dranspose.core.coordination import ResultHeader
from dranspose.core.event import Frame, StreamData, frames_nbytes
from dranspose.core.protocol import EventNumber, ScanId, StreamName

COPY_THRESHOLD = 64 * 1024
"""Frames above this size stay ``zmq.Frame`` objects (zero-copy) on the receiving side; small ones
are copied into ``bytes`` (and packed together on the way: :func:`pack`)."""


class PartialEventsHeader(BaseModel):
    """Header frame of an ingester-to-worker message: one stream's frames of consecutive events.

    ``events`` lists ``(event number, frame count)`` in the order the frames follow. With
    ``packed`` the small frames (up to :data:`COPY_THRESHOLD`) come joined in the first frame
    after the header and ``packed`` gives every frame's length in order (-1 for a large one,
    which follows as a frame of its own, zero-copy); without it every frame is its own.

    A pydantic model on the hot path, measured (a ``timeit`` micro-benchmark, pydantic 2, the
    2-core development host, a 32-character scan id, 2 packed frames per event): reading a header
    with ``model_validate_json`` took 1.8 µs for 1 event and 21 µs for 64, against 2.8 and
    21-27 µs for ``json.loads`` and reading the keys of the dict (a TypedDict's cost); writing
    one with the model's serializer took 3.0 and 8.1 µs, against 4.7 and 30 µs for the JSON
    template the ingester used before. So the typed header costs nothing, and the checks come
    with it.
    """

    scan: ScanId
    stream: StreamName
    typ: str
    events: list[tuple[EventNumber, int]]
    packed: Optional[list[int]] = None


_write_header = PartialEventsHeader.__pydantic_serializer__.to_json


class PartialBatch(NamedTuple):
    """What one ingester-to-worker message carries: one stream's frames of consecutive events,
    as ``(event number, frames, their bytes)``."""

    stream: StreamName
    events: list[tuple[EventNumber, StreamData, int]]


class PartialHeader:
    """Builds the ingester-to-worker messages of one scan and stream (header frame and frames).

    One message carries the frames of one or more consecutive events of this stream that go to
    the same workers (:class:`PartialEventsHeader` says how the frames split into events).
    Batching what the upstream delivered back to back makes one send (and one receive at the
    worker) per batch instead of per event, the main per-event cost at small frames.

    Small frames (up to COPY_THRESHOLD, which the worker copies into ``bytes`` anyway) travel
    packed into one frame after the header: ZMQ's cost is per frame (a send, a receive and the
    I/O threads' work each), so a batch of sixty 2 kB events was 120 of them.
    """

    def __init__(self, scan_id: ScanId, stream: str, typ: str) -> None:
        self.scan_id = scan_id
        self.stream = StreamName(stream)
        self.typ = typ

    def _header(self, counts: list[tuple[EventNumber, int]], packed: Optional[list[int]]) -> bytes:
        # every field given, already of its type (the ingester's own values): no validation
        header = trusted(
            PartialEventsHeader,
            {
                "scan": self.scan_id,
                "stream": self.stream,
                "typ": self.typ,
                "events": counts,
                "packed": packed,
            },
        )
        return _write_header(header, exclude_none=True)

    def __call__(self, events: Sequence[tuple[int, int]]) -> bytes:
        """The header of a message with these ``(event number, frame count)`` parts, each frame
        its own."""
        return self._header(cast(list[tuple[EventNumber, int]], list(events)), None)

    def message(self, events: Sequence[tuple[int, Sequence[Any]]]) -> list[Any]:
        """The parts of one message carrying these ``(event number, frames)``, small frames
        packed."""
        lengths, frames = pack([f for _, event_frames in events for f in event_frames])
        counts = [(event, len(event_frames)) for event, event_frames in events]
        return [self._header(cast(list[tuple[EventNumber, int]], counts), lengths), *frames]


def pack(frames: Sequence[Any]) -> tuple[Optional[list[int]], list[Any]]:
    """The frames to send for ``frames``: those up to COPY_THRESHOLD joined into one (first),
    the large ones after it as they are; and every frame's length in order, -1 for a large one
    (None when nothing was packed: then the frames go as they are).

    ZMQ's cost is per frame (a send, a receive, the I/O threads' work), and the receiver copies
    small frames into ``bytes`` anyway: a batch of sixty small events or results is then one
    frame instead of sixty or more. :func:`unpack` reverses it.
    """
    lengths: list[int] = []
    small: list[Any] = []
    large: list[Any] = []
    for frame in frames:
        length = len(frame)
        if length <= COPY_THRESHOLD:
            lengths.append(length)
            small.append(frame)
        else:
            lengths.append(-1)
            large.append(frame)
    if not small:
        return None, large
    return lengths, [b"".join(small), *large]


def unpack(lengths: list[int], announced: int, parts: Sequence[Any]) -> list[Any]:
    """The frames :func:`pack` packed, from the message parts after the header (``parts[0]``):
    small ones as ``bytes`` cut from the packed frame, large ones as they came.

    Raises unless the header's ``announced`` frame count, the lengths and the parts agree."""
    large = len(parts) - 2
    if (
        len(lengths) != announced
        or lengths.count(-1) != large
        or large < 0
        or min(lengths, default=0) < -1
    ):
        raise ValueError(
            f"header announces {announced} frames, {len(lengths)} lengths of which "
            f"{lengths.count(-1)} large; the message has {len(parts) - 1} frames"
        )
    blob = parts[1].bytes if isinstance(parts[1], zmq.Frame) else bytes(parts[1])
    packed = sum(lengths) + large  # each -1 stands for a large frame
    if packed != len(blob):
        raise ValueError(
            f"packed frame has {len(blob)} bytes, the header's lengths add up to {packed}"
        )
    # cut in C (a Python loop cost 0.4 us a frame)
    ends = list(itertools.accumulate(lengths if not large else [n for n in lengths if n >= 0]))
    small = list(map(blob.__getitem__, map(slice, [0, *ends[:-1]], ends)))
    if not large:  # the common case
        return small
    cut, rest = iter(small), iter(parts[2:])
    return [next(rest) if n < 0 else next(cut) for n in lengths]


def decode_partial(parts: list[zmq.Frame]) -> tuple[ScanId, PartialBatch]:
    """Scan id and the partial events (one per event of the batch) carried by one message.

    Raises on a malformed message: a header that is not a :class:`PartialEventsHeader`, frame
    counts or lengths that do not add up to the frames present, so frames are never attributed
    to the wrong event."""
    header = PartialEventsHeader.model_validate_json(parts[0].bytes)
    typ, events, packed = header.typ, header.events, header.packed
    announced = sum(count for _, count in events)
    frames: list[Frame]
    if packed is not None:
        frames = unpack(packed, announced, parts)
    elif announced != len(parts) - 1:
        raise ValueError(
            f"header announces {announced} frames for events "
            f"{[e for e, _ in events]}, the message has {len(parts) - 1}"
        )
    else:
        frames = [f.bytes if len(f) <= COPY_THRESHOLD else f for f in parts[1:]]
    # an event's size: the sum of the header's lengths when it has them all (in C)
    sizes = packed if packed is not None and -1 not in packed else None
    partials: list[tuple[EventNumber, StreamData, int]] = []
    at = 0
    for number, count in events:
        end = at + count
        partials.append(
            (
                number,
                trusted(StreamData, {"typ": typ, "frames": frames[at:end]}),
                sum(sizes[at:end]) if sizes is not None else frames_nbytes(frames[at:end]),
            )
        )
        at = end
    return header.scan, PartialBatch(header.stream, partials)


class ResultItem(NamedTuple):
    """One result of a worker-to-reducer message: its event, whether it was re-delivered, and
    the pickled payload."""

    event_number: EventNumber
    redelivered: bool
    body: bytes


def decode_results(parts: list[zmq.Frame]) -> tuple[ResultHeader, list[ResultItem]]:
    """The header of one worker-to-reducer message and its results: a ``kind="results"``
    header with one item per announced event, or a ``worker_done`` header with none.

    Raises on a malformed message (the caller drops it whole and says so)."""
    header = ResultHeader.model_validate_json(parts[0].bytes)
    if header.kind == "worker_done":
        return header, []
    if header.kind != "results":
        raise ValueError(f"expected a results or worker_done header, got kind {header.kind!r}")
    if header.packed is None and len(header.events) != len(parts) - 1:
        raise ValueError(
            f"header of {header.worker} announces {len(header.events)} results, "
            f"the message has {len(parts) - 1}"
        )
    if not header.events:
        raise ValueError(f"empty result message from {header.worker}")
    again = set(header.redelivered_events)
    if header.packed is not None:
        bodies = unpack(header.packed, len(header.events), parts)
    else:
        bodies = parts[1:]
    make = tuple.__new__  # the NamedTuple's own constructor is a Python call per result
    return header, [
        make(ResultItem, (number, number in again, body if type(body) is bytes else body.bytes))
        for number, body in zip(header.events, bodies)
    ]

"""What an ingester must know about each upstream protocol, and nothing more.

The ingester's state machine is the same for every source: wait for the start of a series, forward
each message as one event, finish at the series end, skip keep-alives. A :class:`Protocol` tells
it, per upstream message, which of those it is (``classify``), which transport to read with
(``socket``: ZMQ PULL or SUB, a TCP byte stream, HTTP posts), which ``StreamData.typ`` to label
frames with, and how to group transport messages into protocol messages when a device splits one
message over several (``framer``). A protocol spoken over TCP says how to cut the byte stream into
messages (:class:`TcpFraming`), one posted over HTTP how requests become messages and back
(:class:`HttpFraming`); one that numbers its messages says where (:class:`MessageCounter`), so
a SUB ingester can count the messages it never received. Classification only sniffs headers; decoding
stays with the payload's parser in ``dranspose/protocols/<name>/parser.py``, and so does every
protocol-specific piece of framing (the plug-ins here only point to it).

Pure code, no I/O: :func:`number_series` applies the same rules offline to turn a raw capture into
an ingester dump.
"""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from pydantic_core import from_json

from dranspose.protocols.common.frames import Frame, frame_bytes
from dranspose.protocols.lecroy.packets import LECROY_TYPE


class Kind(enum.Enum):
    START = "start"  # opens a series: becomes the scan's event 0
    EVENT = "event"  # one event of the series
    END = "end"  # closes the series: the scan's last event
    SKIP = "skip"  # keep-alive or chatter: read, counted, not an event


Frames = Sequence[Frame]  # a message's frames, as parsers take them (protocols.common.frames.Frame)


class MessageFramer(typing.Protocol):
    """Groups transport messages into protocol messages (:class:`Framer` is the default)."""

    def feed(self, frames: list[Any]) -> list[list[Any]]:
        """The protocol messages ``frames`` (one transport message) completes, maybe none."""
        ...


class Framer:
    """Groups transport messages into protocol messages; the default is one to one."""

    def feed(self, frames: list[Any]) -> list[list[Any]]:
        return [frames]


def _json_first_frame(frames: Frames, marker: bytes) -> Optional[dict]:
    """A JSON object in the first frame, parsed only when its bytes contain ``marker``."""
    if not frames:
        return None
    head = frame_bytes(frames[0])
    if marker not in head:
        return None
    try:
        message = from_json(head, allow_inf_nan=True)
    except (ValueError, RecursionError):
        return None
    return message if type(message) is dict else None


def _json_head(frames: Frames, key: str, marker: bytes) -> Optional[str]:
    """The string ``key`` of a JSON first frame whose bytes contain ``marker``."""
    message = _json_first_frame(frames, marker)
    value = message.get(key) if message is not None else None
    return value if isinstance(value, str) else None


def json_htype_classifier(
    start: str, end: str, key: str = "htype", skip: tuple[str, ...] = ()
) -> Callable[[Frames], Kind]:
    """Classify by a string field of a JSON first frame; anything else is an event."""
    start_b, end_b = start.encode(), end.encode()
    skip_b = tuple(s.encode() for s in skip)

    def classify(frames: Frames) -> Kind:
        head = frame_bytes(frames[0]) if frames else b""
        if start_b in head and _json_head(frames, key, start_b) == start:
            return Kind.START
        if end_b in head and _json_head(frames, key, end_b) == end:
            return Kind.END
        for s in skip_b:
            if s in head and _json_head(frames, key, s) == s.decode():
                return Kind.SKIP
        return Kind.EVENT

    return classify


class ByteSplitter(typing.Protocol):
    """Cuts a byte stream into messages; keeps an incomplete message until more bytes come."""

    def feed(self, data: bytes) -> list[bytes]:
        """The messages completed by ``data``, in order."""
        ...

    @property
    def rest(self) -> bytes:
        """Bytes of a message not complete yet (lost if the connection drops now)."""
        ...


@dataclass(frozen=True)
class TcpFraming:
    """A protocol read as a TCP client: what to send after connecting, how to check the
    server's one-line reply (``reply`` is what a server playing a capture back answers), and
    how to cut the byte stream that follows into messages."""

    request: bytes
    check_reply: Callable[[bytes], None]  # raises ParseError (a ValueError) when refused
    make_splitter: Callable[[], ByteSplitter]
    reply: bytes = b"OK\n"


@dataclass(frozen=True)
class HttpFraming:
    """A protocol posted to an HTTP server: ``POST <prefix><endpoint>`` per message.

    ``to_frame(endpoint, body)`` turns an accepted post into the one frame forwarded (``None``:
    accepted but not part of the stream) and raises a ``ValueError`` saying what is wrong with
    a bad one; ``to_post(frame)`` is the inverse, for playing a capture back.
    """

    prefix: str
    endpoints: tuple[str, ...]
    to_frame: Callable[[str, bytes], Optional[bytes]]
    to_post: Callable[[bytes], tuple[str, bytes]]


@dataclass(frozen=True)
class MessageCounter:
    """Where a protocol numbers its messages: ``number(frames)`` is a message's counter, or
    ``None`` for messages that carry none; consecutive numbered messages of a series count up
    by one, the first numbered one after the series start being ``first`` (``None``: unknown).
    """

    number: Callable[[Frames], Optional[int]]
    first: Optional[int] = None
    name: str = ""
    """What the counter is, for people (``"message_id"``, ``"frame of images"``)."""


class CounterWatch:
    """Finds messages missing from a protocol's counter, as a SUB reader sees them arrive.

    :meth:`see` returns how many numbers were skipped right before this message (0: none). A
    series start resets the expectation to the protocol's ``first``; a counter that goes back
    (an upstream restart) is not a loss and only resets it.
    """

    def __init__(self, counter: MessageCounter) -> None:
        self.counter = counter
        self.expected: Optional[int] = None

    def see(self, kind: Kind, frames: Frames) -> int:
        if kind is Kind.START:
            self.expected = self.counter.first
        number = self.counter.number(frames)
        if number is None:
            return 0
        missing = 0
        if self.expected is not None and number > self.expected:
            missing = number - self.expected
        self.expected = number + 1
        return missing


def json_counter(
    key: str, kind_key: str = "htype", kinds: Optional[tuple[str, ...]] = None
) -> Callable[[Frames], Optional[int]]:
    """The integer ``key`` of a JSON first frame, only for messages whose ``kind_key`` is one
    of ``kinds`` (all messages when ``kinds`` is None)."""
    wanted = set(kinds) if kinds is not None else None
    marker = f'"{key}"'.encode()

    def number(frames: Frames) -> Optional[int]:
        message = _json_first_frame(frames, marker)
        if message is None:
            return None
        kind = message.get(kind_key)
        # the kind may be any JSON value in a garbled message: only a string can be wanted
        if wanted is not None and (type(kind) is not str or kind not in wanted):
            return None
        value = message.get(key)
        return value if type(value) is int else None

    return number


@dataclass(frozen=True)
class Protocol:
    """One upstream protocol: everything the ingester, the capture tools and the transports ask
    about it is a field here, so that none of them decides by the protocol's name."""

    name: str
    typ: str
    socket: str  # "pull", "sub", "tcp" or "http"
    classify: Callable[[Frames], Kind]
    make_framer: Callable[[], MessageFramer] = field(default=Framer)
    description: str = ""
    counter: Optional[MessageCounter] = None
    tcp: Optional[TcpFraming] = None
    http: Optional[HttpFraming] = None
    series_start: bool = True
    """Whether a series opens with a START message. Without one (``raw``) every message is an
    event from the first one a scan reads; with one, messages read before it are discarded."""


def _everything_is_an_event(frames: Frames) -> Kind:
    return Kind.EVENT


_CONTRAST_KINDS = {"started": Kind.START, "finished": Kind.END, "heartbeat": Kind.SKIP}


def _classify_contrast(frames: Frames) -> Kind:
    """Contrast sends pickled dicts; only the restricted unpickler may look inside."""
    from dranspose.protocols.common.errors import ParseError
    from dranspose.protocols.common.safe_pickle import safe_loads

    try:
        message = safe_loads(frame_bytes(frames[0]), "contrast frame 0")
    except (ParseError, IndexError):
        return Kind.EVENT  # the payload's parser reports what is wrong with it
    status = message.get("status") if isinstance(message, dict) else None
    return _CONTRAST_KINDS.get(status, Kind.EVENT) if isinstance(status, str) else Kind.EVENT


def _classify_lecroy(frames: Frames) -> Kind:
    """LeCroy control messages carry a numeric ``what``: 0 prepare opens, 3 stop closes."""
    message = _json_first_frame(frames, b'"msg"')
    what = message.get("what") if message is not None else None
    if isinstance(what, (int, float)) and what in (0, 3):
        return Kind.START if what == 0 else Kind.END
    return Kind.EVENT


def _xspress_framer() -> MessageFramer:
    from dranspose.protocols.xspress3.parser import FrameGrouper

    return FrameGrouper()


_POSITIONCAP_KINDS = {"start": Kind.START, "event": Kind.EVENT, "end": Kind.END, "skip": Kind.SKIP}


def _classify_positioncap(frames: Frames) -> Kind:
    from dranspose.protocols.positioncap.parser import message_kind

    return _POSITIONCAP_KINDS[message_kind(frame_bytes(frames[0]))] if frames else Kind.EVENT


def _positioncap_tcp() -> TcpFraming:
    from dranspose.protocols.positioncap import parser as positioncap

    return TcpFraming(
        request=positioncap.CAPTURE_REQUEST,
        check_reply=positioncap.check_reply,
        make_splitter=positioncap.MessageSplitter,
    )


def _sardana_http() -> HttpFraming:
    from dranspose.protocols.sardana import parser as sardana

    return HttpFraming(
        prefix="/v1/",
        endpoints=sardana.POST_ENDPOINTS,
        to_frame=sardana.frame_for_post,
        to_post=sardana.post_for_frame,
    )


def _sardana_classifier() -> Callable[[Frames], Kind]:
    return json_htype_classifier("DataDescription", "RecordEnd", key="type")


def _frame_counter(kind: str, noun: str) -> MessageCounter:
    """The ``frame`` counter of the JSON first frames whose ``htype`` is ``kind``, from 0."""
    return MessageCounter(json_counter("frame", kinds=(kind,)), first=0, name=f"frame of {noun}")


def _message_type_protocol(name: str, typ: str, description: str) -> Protocol:
    """A device publishing one JSON object per message over ZMQ SUB, its ``message_type``
    ``series-start``, ``data`` or ``series-end``, numbered by ``message_id`` from 1."""
    return Protocol(
        name,
        typ,
        "sub",
        json_htype_classifier("series-start", "series-end", key="message_type"),
        description=description,
        counter=MessageCounter(json_counter("message_id"), first=1, name="message_id"),
    )


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        Protocol(
            "stins",
            "STINS",
            "pull",
            json_htype_classifier("header", "series_end"),
            description="STINS/stream1 area detectors: header, images, series_end",
            counter=MessageCounter(json_counter("msg_number"), first=0, name="msg_number"),
        ),
        _message_type_protocol(
            "pcap", "PCAP", "PandA position capture over ZMQ: series-start, data, series-end"
        ),
        _message_type_protocol(
            "albaem", "albaem", "AlbaEM electrometer: series-start, data, series-end"
        ),
        Protocol(
            "contrast",
            "contrast",
            "sub",
            _classify_contrast,
            description="Contrast scan controller: pickled started/running/finished, "
            "heartbeats skipped",
        ),
        Protocol(
            "xspress",
            "xspress",
            "sub",
            json_htype_classifier("header", "series_end"),
            make_framer=_xspress_framer,
            description="Xspress3 fluorescence: header, image+spectra+meta (single-frame "
            "streams regrouped), series_end",
            counter=_frame_counter("image", "images"),
        ),
        Protocol(
            "lecroy",
            LECROY_TYPE,  # the original's stream type, which its payloads compare with
            "sub",
            _classify_lecroy,
            description="LeCroy oscilloscope: prepare, sequence start/traces/end, stop",
            counter=_frame_counter("traces", "traces"),
        ),
        Protocol(
            "eiger_legacy",
            "EIGER_LEGACY",
            "pull",
            json_htype_classifier("dheader-1.0", "dseries_end-1.0"),
            description="Dectris Eiger stream v1: dheader, dimage (+bslz4), dseries_end",
            counter=_frame_counter("dimage-1.0", "dimage"),
        ),
        Protocol(
            "positioncap",
            "PCAP_RAW",
            "tcp",
            _classify_positioncap,
            tcp=_positioncap_tcp(),
            description="PandA position capture over TCP (data port 8889): header block, "
            "sample lines, END",
        ),
        Protocol(
            "sardana",
            "sardana",
            "http",
            _sardana_classifier(),
            http=_sardana_http(),
            description="Sardana HTTP recorder posts: data_desc, record_data, record_end",
        ),
        Protocol(
            "raw",
            "raw",
            "pull",
            _everything_is_an_event,
            description="no series structure: every message is an event from the scan start",
            series_start=False,
        ),
    ]
}


def register(protocol: Protocol) -> None:
    """Add a protocol (used by the protocol modules; also open to site-specific plug-ins)."""
    PROTOCOLS[protocol.name] = protocol


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name.lower()]
    except KeyError:
        raise KeyError(
            f"unknown protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}"
        ) from None


def number_series(
    protocol: Protocol,
    messages: Iterable[list[Any]],
) -> Iterator[tuple[int, list[Any]]]:
    """Event numbers for the messages of the first series in a raw capture, as an ingester
    running a scan with a simple trigger map would give them: the start is event 0, each event
    message the next number, the end the last. Messages before the start and keep-alives are
    dropped; so is everything after the end.
    """
    framer = protocol.make_framer()
    started = not protocol.series_start
    number = 0
    for transport_message in messages:
        for message in framer.feed(list(transport_message)):
            kind = protocol.classify(message)
            if kind is Kind.SKIP:
                continue
            if not started:
                if kind is not Kind.START:
                    continue
                started = True
            yield number, message
            number += 1
            if kind is Kind.END:
                return

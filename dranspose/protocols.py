"""What an ingester must know about each upstream protocol, and nothing more.

The ingester's state machine is the same for every source: wait for the start of a series, forward
each message as one event, finish at the series end, skip keep-alives. A :class:`Protocol` tells
it, per upstream message, which of those it is (``classify``), which socket to read with, which
``StreamData.typ`` to label frames with, and how to group transport messages into protocol
messages when a device splits one message over several (``framer``). Classification only sniffs
headers; decoding stays with the payload's parser in :mod:`dranspose.middlewares`.

Pure code, no I/O: :func:`number_series` applies the same rules offline to turn a raw capture into
an ingester dump.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence


class Kind(enum.Enum):
    START = "start"  # opens a series: becomes the scan's event 0
    EVENT = "event"  # one event of the series
    END = "end"  # closes the series: the scan's last event
    SKIP = "skip"  # keep-alive or chatter: read, counted, not an event


Frames = Sequence[Any]  # bytes, memoryview or zmq.Frame


def frame_bytes(frame: Any) -> bytes:
    if isinstance(frame, bytes):
        return frame
    raw = getattr(frame, "bytes", None)
    return raw if isinstance(raw, bytes) else bytes(frame)


class Framer:
    """Groups transport messages into protocol messages; the default is one to one."""

    def feed(self, frames: list[Any]) -> list[list[Any]]:
        return [frames]


def _json_head(frames: Frames, key: str, marker: bytes) -> Optional[str]:
    """The ``key`` of a JSON first frame, parsed only when its bytes contain ``marker``."""
    if not frames:
        return None
    head = frame_bytes(frames[0])
    if marker not in head:
        return None
    try:
        value = json.loads(head).get(key)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def json_htype_classifier(start: str, end: str, key: str = "htype",
                          skip: tuple[str, ...] = ()) -> Callable[[Frames], Kind]:
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


@dataclass(frozen=True)
class Protocol:
    name: str
    typ: str
    socket: str  # "pull", "sub", "tcp" or "http"
    classify: Callable[[Frames], Kind]
    make_framer: Callable[[], Framer] = field(default=Framer)
    description: str = ""


def _everything_is_an_event(frames: Frames) -> Kind:
    return Kind.EVENT


_CONTRAST_KINDS = {"started": Kind.START, "finished": Kind.END, "heartbeat": Kind.SKIP}


def _classify_contrast(frames: Frames) -> Kind:
    """Contrast sends pickled dicts; only the restricted unpickler may look inside."""
    from dranspose.middlewares.errors import ParseError
    from dranspose.middlewares.safe_pickle import safe_loads

    try:
        message = safe_loads(frame_bytes(frames[0]), "contrast frame 0")
    except (ParseError, IndexError):
        return Kind.EVENT  # the payload's parser reports what is wrong with it
    status = message.get("status") if isinstance(message, dict) else None
    return _CONTRAST_KINDS.get(status, Kind.EVENT) if isinstance(status, str) else Kind.EVENT


def _classify_lecroy(frames: Frames) -> Kind:
    """LeCroy control messages carry a numeric ``what``: 0 prepare opens, 3 stop closes."""
    head = frame_bytes(frames[0]) if frames else b""
    if b'"msg"' not in head:
        return Kind.EVENT
    try:
        what = json.loads(head).get("what")
    except (ValueError, AttributeError):
        return Kind.EVENT
    return {0: Kind.START, 3: Kind.END}.get(what, Kind.EVENT)


def _xspress_framer() -> Framer:
    from dranspose.middlewares.xspress import FrameGrouper

    return FrameGrouper()  # type: ignore[return-value]


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        Protocol("stins", "STINS", "pull", json_htype_classifier("header", "series_end"),
                 description="STINS/stream1 area detectors: header, images, series_end"),
        Protocol("pcap", "PCAP", "sub",
                 json_htype_classifier("series-start", "series-end", key="message_type"),
                 description="PandA position capture over ZMQ: series-start, data, series-end"),
        Protocol("albaem", "albaem", "sub",
                 json_htype_classifier("series-start", "series-end", key="message_type"),
                 description="AlbaEM electrometer: series-start, data, series-end"),
        Protocol("contrast", "contrast", "sub", _classify_contrast,
                 description="Contrast scan controller: pickled started/running/finished, "
                 "heartbeats skipped"),
        Protocol("xspress", "xspress", "sub", json_htype_classifier("header", "series_end"),
                 make_framer=_xspress_framer,
                 description="Xspress3 fluorescence: header, image+spectra+meta (single-frame "
                 "streams regrouped), series_end"),
        Protocol("lecroy", "lecroy", "sub", _classify_lecroy,
                 description="LeCroy oscilloscope: prepare, sequence start/traces/end, stop"),
        Protocol("eiger_legacy", "EIGER_LEGACY", "pull",
                 json_htype_classifier("dheader-1.0", "dseries_end-1.0"),
                 description="Dectris Eiger stream v1: dheader, dimage (+bslz4), dseries_end"),
        Protocol("raw", "raw", "pull", _everything_is_an_event,
                 description="no series structure: every message is an event from the scan start"),
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
            f"unknown protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}") from None


def number_series(protocol: Protocol, messages: Iterable[list[Any]],
                  ) -> Iterator[tuple[int, list[Any]]]:
    """Event numbers for the messages of the first series in a raw capture, as an ingester
    running a scan with a simple trigger map would give them: the start is event 0, each event
    message the next number, the end the last. Messages before the start and keep-alives are
    dropped; so is everything after the end.
    """
    framer = protocol.make_framer()
    started = protocol.classify is _everything_is_an_event
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

"""Fuzz targets of the bad-input campaign: every protocol parser and the capture readers.

Each :class:`Target` takes one generated input and feeds it to the code under test. The contract
is the one the docs promise: malformed input raises the documented error (``ParseError`` for the
protocol parsers, ``CaptureError`` for capture files) and nothing else; the ingester-side helpers
(classification, message counters, framers, byte splitters) never raise at all, since an
exception there would stop an ingester. An input that takes longer than ``HANG_SECONDS`` counts as
a hang.

Inputs start from real frames (the captures in ``tests/data`` and the recorded sessions in the
protocol tests) and are mutated: frames truncated, bytes flipped or inserted, frames dropped,
repeated or swapped, JSON values replaced by values of other types and shapes, keys removed; plus
plain random bytes. Used by ``tests/test_fuzz_parsers.py`` and ``bench/badinput.py fuzz``.
"""

from __future__ import annotations

import atexit
import gzip
import json
import os
import pickle
import shutil
import signal
import tempfile
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import zmq
from hypothesis import strategies as st

from dranspose.core.event import StreamData
from dranspose.io.capture import CaptureError, read_capture, read_raw_capture
from dranspose.middlewares import (
    albaem,
    contrast,
    eiger_legacy,
    lecroy,
    pcap,
    positioncap,
    sardana,
    stream1,
    xspress,
)
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.safe_pickle import safe_loads
from dranspose.protocols.registry import Kind, get_protocol

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
HANG_SECONDS = 5.0


class HangError(Exception):
    """An input kept the code under test busy for longer than ``HANG_SECONDS``."""


@contextmanager
def time_limit(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Raise :class:`HangError` in the main thread when the block runs longer than ``seconds``."""

    def alarm(signum: int, frame: Any) -> None:
        raise HangError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------------ seeds


@cache
def protocol_messages(protocol: str) -> tuple[tuple[bytes, ...], ...]:
    """The protocol messages (frames grouped as the ingester groups them) of real recordings."""
    if protocol == "stins":
        return tuple(
            tuple(bytes(f) for f in m.streams["xrd"].frames)
            for m in read_capture(ROOT / "data" / "dump_xrd.cbors")
        )
    if protocol == "positioncap":
        from tests.support.positioncap import END, HEADER, LINES, OLD_HEADER

        return tuple((m,) for m in [HEADER, *LINES, END, OLD_HEADER, b"OK\n"])
    if protocol == "sardana":
        from tests.support.sardana import DATA_DESC, RECORD_END_TIMES, RECORDS, tagged

        return tuple(
            (m,)
            for m in [
                tagged(DATA_DESC, "DataDescription"),
                *(tagged(r, "RecordData") for r in RECORDS),
                tagged(RECORD_END_TIMES, "RecordEnd"),
                DATA_DESC,
                RECORDS[0],
            ]
        )
    files = {
        "pcap": ["pcap-zmq.cbors"],
        "albaem": ["albaem-dump.cbors"],
        "contrast": ["contrast-dump.cbors"],
        "eiger_legacy": ["eiger-small.cbors"],
        "lecroy": ["maui-02-continuous-3.cbor.gz"],
        "xspress": ["xspress3-multipart.cbors", "xspress3mini-dump20.cbors"],
    }[protocol]
    framer = get_protocol(protocol).make_framer()
    out: list[tuple[bytes, ...]] = []
    for name in files:
        for item in read_raw_capture(DATA / name):
            out.extend(tuple(bytes(f) for f in m) for m in framer.feed(list(item)))
    # keep the seeds small enough that mutating them stays fast: the first messages of every kind
    kinds: dict[Any, int] = {}
    kept = []
    for message in out:
        kind = get_protocol(protocol).classify(list(message))
        head = message[0][:40] if message else b""
        key = (kind, len(message), head[:12])
        if kinds.get(key, 0) < 2:
            kinds[key] = kinds.get(key, 0) + 1
            kept.append(tuple(f[:200_000] if len(f) > 200_000 else f for f in message))
    return tuple(kept)


def pickle_seeds() -> list[bytes]:
    plain = {
        "status": "running",
        "x": 1.5,
        "names": ["a", "b"],
        "flag": True,
        "none": None,
        "nested": OrderedDict(a=np.arange(6, dtype=np.int32).reshape(2, 3)),
        "scalar": np.float64(2.5),
        "text": np.array(["ab", "c"]),
        "b": b"\x00\x01",
    }
    return [pickle.dumps(plain, protocol=p) for p in (2, 3, 4, 5)] + [
        m[0] for m in protocol_messages("contrast")[:3]
    ]


# ------------------------------------------------------------------------------ mutations

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=12,
)
shapes = st.lists(st.integers(-3, 2**40) | st.sampled_from([0, 1, 2, 10**9]), max_size=4)


def _mutate_json(draw: Callable[..., Any], frame: bytes) -> Optional[bytes]:
    """A JSON object frame with one value replaced, removed or added; None if not JSON."""
    try:
        value = json.loads(frame)
    except (ValueError, RecursionError):  # not JSON, or already mutated past the nesting limit
        return None
    if not isinstance(value, dict) or not value:
        return None
    target = value
    keys = list(target)
    key = draw(st.sampled_from(keys))
    if isinstance(target[key], dict) and target[key] and draw(st.booleans()):
        target = target[key]
        key = draw(st.sampled_from(list(target)))
    action = draw(st.sampled_from(["replace", "remove", "add", "shape", "dtype", "deep"]))
    if action == "deep":  # nesting past any recursion limit, closed or cut off
        depth = draw(st.sampled_from([50, 5_000, 100_000]))
        closing = b"]" * depth if draw(st.booleans()) else b""
        target[key] = "\x00deep\x00"
        return json.dumps(value).encode().replace(b'"\\u0000deep\\u0000"', b"[" * depth + closing)
    if action == "replace":
        target[key] = draw(json_values)
    elif action == "remove":
        del target[key]
    elif action == "add":
        target[draw(st.text(max_size=8))] = draw(json_values)
    elif action == "shape":
        target[draw(st.sampled_from(["shape", key]))] = draw(shapes)
    else:
        target[draw(st.sampled_from(["type", "dtype", "encoding", "compression", key]))] = draw(
            st.sampled_from(
                [
                    "uint16",
                    "<u2",
                    "float64",
                    "int8",
                    "bslz4",
                    "lz4<",
                    "bs32-lz4<",
                    "none",
                    "|S3",
                    "object",
                    "",
                    "U5",
                    "complex64",
                    "bool",
                    "xx",
                ]
            )
        )
    return json.dumps(value, allow_nan=True).encode()


def _mutate_bytes(draw: Callable[..., Any], frame: bytes) -> bytes:
    action = draw(st.sampled_from(["truncate", "flip", "insert", "replace", "extend"]))
    if action == "truncate" or not frame:
        return frame[: draw(st.integers(0, max(0, len(frame) - 1)))] if frame else b""
    if action == "flip":
        data = bytearray(frame)
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        return bytes(data)
    if action == "insert":
        i = draw(st.integers(0, len(frame)))
        return frame[:i] + draw(st.binary(min_size=1, max_size=16)) + frame[i:]
    if action == "replace":
        return draw(st.binary(max_size=64))
    return frame + draw(st.binary(min_size=1, max_size=64))


@st.composite
def mutated_message(draw: Callable[..., Any], seeds: tuple[tuple[bytes, ...], ...]) -> list[bytes]:
    """A real message with one to three mutations, or random frames."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.lists(st.binary(max_size=64), max_size=4))
    frames = list(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(
            st.sampled_from(
                ["json", "json", "json", "bytes", "bytes", "drop", "repeat", "swap", "add"]
            )
        )
        if not frames:
            frames.append(draw(st.binary(max_size=32)))
            continue
        i = draw(st.integers(0, len(frames) - 1))
        if action == "json":
            frames[i] = _mutate_json(draw, frames[i]) or _mutate_bytes(draw, frames[i])
        elif action == "bytes":
            frames[i] = _mutate_bytes(draw, frames[i])
        elif action == "drop":
            del frames[i]
        elif action == "repeat":
            frames.insert(i, frames[i])
        elif action == "swap":
            j = draw(st.integers(0, len(frames) - 1))
            frames[i], frames[j] = frames[j], frames[i]
        else:
            frames.insert(
                i,
                draw(st.sampled_from(seeds))[0]
                if draw(st.booleans())
                else draw(st.binary(max_size=32)),
            )
    return frames


def as_received(frames: list[bytes], kind: int) -> list[Any]:
    """Frames as a transport hands them over: bytes, memoryviews or ZMQ frames."""
    if kind == 1:
        return [memoryview(f) for f in frames]
    if kind == 2:
        return [zmq.Frame(f) for f in frames]
    return frames


# ------------------------------------------------------------------------------ targets


@dataclass
class Target:
    """One thing to fuzz: a strategy for its inputs and a function that runs one input.

    ``run`` raises only what the contract allows (it catches that itself and returns); anything
    else it lets through, and the test reports it with the input."""

    name: str
    inputs: Callable[[], st.SearchStrategy[Any]]
    run: Callable[[Any], None]


def _ingester_side(protocol: str, frames: list[Any]) -> None:
    """What an ingester does with a message before any payload sees it: must never raise."""
    proto = get_protocol(protocol)
    kind = proto.classify(frames)
    assert isinstance(kind, Kind), kind
    if proto.counter is not None:
        number = proto.counter.number(frames)
        assert number is None or type(number) is int, number


def _parser_target(protocol: str, parse: Callable[[StreamData], Any]) -> Target:
    typ = get_protocol(protocol).typ

    def inputs() -> st.SearchStrategy[Any]:
        return st.tuples(mutated_message(protocol_messages(protocol)), st.integers(0, 2))

    def run(given: tuple[list[bytes], int]) -> None:
        frames = as_received(*given)
        _ingester_side(protocol, frames)
        try:
            parse(StreamData.model_construct(typ=typ, frames=frames))
        except ParseError:
            pass

    return Target(protocol, inputs, run)


def _positioncap_session(given: tuple[list[bytes], list[bytes]]) -> None:
    """A (possibly mutated) header, then mutated messages, through one parser as in a scan."""
    header, messages = given
    parser = positioncap.PositioncapParser()
    for frames in [header, *[[m] for m in messages]]:
        _ingester_side("positioncap", frames)
        try:
            parser.parse(StreamData.model_construct(typ="PCAP_RAW", frames=frames))
        except ParseError:
            pass


def _positioncap_inputs() -> st.SearchStrategy[Any]:
    seeds = protocol_messages("positioncap")
    return st.tuples(
        st.just([seeds[0][0]]) | mutated_message(seeds[:1]),
        st.lists(mutated_message(seeds).map(lambda f: b"".join(f)), max_size=4),
    )


def _positioncap_stream(given: tuple[bytes, list[int]]) -> None:
    """The TCP byte stream: reply check and splitting, cut into arbitrary reads."""
    data, cuts = given
    try:
        positioncap.check_reply(data.split(b"\n", 1)[0] + b"\n")
    except ParseError:
        pass
    whole, rest = positioncap.split_messages(data)
    splitter = positioncap.MessageSplitter()
    pieces: list[bytes] = []
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        pieces.extend(splitter.feed(data[last:cut]))
        last = cut
    assert pieces == whole and splitter.rest == rest
    for message in pieces:
        assert positioncap.message_kind(message) in ("start", "event", "end", "skip")


def _positioncap_stream_inputs() -> st.SearchStrategy[Any]:
    from tests.support.positioncap import SESSION

    session = st.just(SESSION) | mutated_message(((SESSION,),)).map(lambda f: b"".join(f))
    return st.tuples(
        session | st.binary(max_size=300), st.lists(st.integers(0, 10_000), max_size=6)
    )


def _sardana_posts(given: tuple[str, bytes]) -> None:
    endpoint, body = given
    try:
        frame = sardana.frame_for_post(endpoint, body)
    except ParseError:
        return
    if frame is not None:  # what the ingester accepted goes back out unchanged in meaning
        sardana.post_for_frame(frame)


def _sardana_post_inputs() -> st.SearchStrategy[Any]:
    from tests.support.sardana import DATA_DESC, RECORD_END_TIMES, RECORDS

    seeds = ((DATA_DESC,), (RECORDS[0],), (RECORD_END_TIMES,), (b"{}",))
    endpoints = st.sampled_from(list(sardana.POST_ENDPOINTS) + ["nope", "", "data_desc/x"])
    return st.tuples(endpoints, mutated_message(seeds).map(lambda f: b"".join(f)))


def _sardana_frames_back(frame: bytes) -> None:
    try:
        sardana.post_for_frame(frame)
    except ParseError:
        pass


def _safe_pickle(data: bytes) -> None:
    try:
        safe_loads(data, "fuzzed frame")
    except ParseError:
        pass


def _pickle_inputs() -> st.SearchStrategy[Any]:
    seeds = tuple((p,) for p in pickle_seeds())
    return mutated_message(seeds).map(lambda f: b"".join(f))


# capture files: mutated bytes of real captures, written to a file the reader opens by name

_CAPTURE_DIR = tempfile.mkdtemp(prefix="dranspose-fuzz-")
atexit.register(shutil.rmtree, _CAPTURE_DIR, ignore_errors=True)


@cache
def capture_seeds() -> tuple[bytes, ...]:
    dump = (ROOT / "data" / "dump_xrd.cbors").read_bytes()
    raw = (DATA / "albaem-dump.cbors").read_bytes()
    return (dump, raw, dump[:1500], raw[:700])


def _capture_inputs() -> st.SearchStrategy[Any]:
    seeds = tuple((s,) for s in capture_seeds())
    content = mutated_message(seeds).map(lambda f: b"".join(f)) | st.binary(max_size=200)
    return st.tuples(
        content, st.sampled_from(["plain", "gzip", "gzip-raw"]), st.sampled_from(["dump", "raw"])
    )


def _capture(given: tuple[bytes, str, str]) -> None:
    content, layout, reader = given
    if layout == "plain":
        path = os.path.join(_CAPTURE_DIR, "fuzz.cbors")
        data = content
    else:  # gzip: compressed mutated CBOR, or the mutated bytes as they are (a damaged .gz)
        path = os.path.join(_CAPTURE_DIR, "fuzz.cbors.gz")
        data = gzip.compress(content, mtime=0) if layout == "gzip" else content
    with open(path, "wb") as fh:
        fh.write(data)
    read = read_capture if reader == "dump" else read_raw_capture
    try:
        for _ in read(path):
            pass
    except CaptureError:
        pass


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        _parser_target("stins", stream1.parse),
        _parser_target("pcap", pcap.parse),
        _parser_target("albaem", albaem.parse),
        _parser_target("contrast", contrast.parse),
        _parser_target("xspress", xspress.parse),
        _parser_target("lecroy", lecroy.parse),
        _parser_target("eiger_legacy", eiger_legacy.parse),
        _parser_target("sardana", sardana.parse),
        Target("positioncap", _positioncap_inputs, _positioncap_session),
        Target("positioncap-stream", _positioncap_stream_inputs, _positioncap_stream),
        Target("sardana-posts", _sardana_post_inputs, _sardana_posts),
        Target(
            "sardana-frames",
            lambda: mutated_message(protocol_messages("sardana")).map(lambda f: b"".join(f)),
            _sardana_frames_back,
        ),
        Target("safe-pickle", _pickle_inputs, _safe_pickle),
        Target("capture", _capture_inputs, _capture),
    ]
}

"""LeCroy oscilloscope packets: both recorded captures, grouped sequences, building frames, and
every malformed case."""

from __future__ import annotations

import gzip
import json
import math
import pickle
import struct
from collections import Counter
from pathlib import Path

import cbor2
import numpy as np
import pytest
import zmq
from pydantic import ValidationError

from dranspose.core.event import StreamData
from dranspose.io.capture import read_raw_capture
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.lecroy.packets import (
    LECROY_TYPE,
    LecroyData,
    LecroyEnd,
    LecroyPacketAdapter,
    LecroyParsed,
    LecroyPrepare,
    LecroySeqEnd,
    LecroySeqStart,
)
from dranspose.protocols.lecroy.parser import parse

DATA = Path(__file__).parent / "data"
CONTINUOUS = DATA / "maui-02-continuous-3.cbor.gz"
SEQUENTIAL = DATA / "maui-02-sequential-3.cbor.gz"
POINTS = 8002
SAMPLE_INTERVAL = 1.25000001668929e-11


def read_items(path: Path) -> list[list[bytes]]:
    """The raw capture decoded with gzip and plain cbor2, independently of read_raw_capture."""
    items = []
    with gzip.open(path, "rb") as fh:
        decoder = cbor2.CBORDecoder(fh)
        while True:
            try:
                items.append(list(decoder.decode()))
            except cbor2.CBORDecodeEOF:
                return items


def kind_of(frames: list[bytes]) -> str:
    """The message kind, from the first frame's JSON alone."""
    header = json.loads(frames[0])
    if header["htype"] == "traces":
        return "trace"
    return ["prepare", "seq_start", "seq_end", "stop"][header["what"]]


def float64s(raw: bytes) -> list[float]:
    """Little-endian doubles, unpacked without numpy."""
    return list(struct.unpack(f"<{len(raw) // 8}d", raw))


def lecroy(*frames: object, typ: str = "lecroy") -> StreamData:
    """The frames as our ingester forwards them, with the type it stamps (the protocol's name;
    LECROY_TYPE is the original dranspose's type, which ``to_stream_data`` uses)."""
    return StreamData.model_construct(typ=typ, frames=list(frames))


def parse_error(stream: StreamData) -> str:
    with pytest.raises(ParseError) as info:
        parse(stream)
    return str(info.value)


@pytest.fixture(scope="module")
def continuous() -> list[list[bytes]]:
    return read_items(CONTINUOUS)


@pytest.fixture(scope="module")
def sequential() -> list[list[bytes]]:
    return read_items(SEQUENTIAL)


@pytest.fixture(scope="module")
def captures(continuous, sequential) -> dict[str, list[list[bytes]]]:
    return {"continuous": continuous, "sequential": sequential}


def trace_items(items: list[list[bytes]]) -> list[list[bytes]]:
    return [frames for frames in items if kind_of(frames) == "trace"]


def trace_frames(ch: int = 2, shape=(1, 4), frame: int = 0, **fields: object) -> list[object]:
    """A consistent synthetic trace message; fields set to ... are left out of the header."""
    header = {
        "htype": "traces",
        "ch": ch,
        "ts": 1.5,
        "frame": frame,
        "shape": list(shape),
        "horiz_offset": -1e-7,
        "horiz_interval": 1e-11,
        "dtype": "float64",
    }
    header.update(fields)
    header = {k: v for k, v in header.items() if v is not ...}
    rows = shape[0] if shape else 1
    waveforms = np.arange(math.prod(shape), dtype="<f8").tobytes()
    stamps = pickle.dumps([1.5 + 0.1 * i for i in range(rows)], protocol=4)
    return [json.dumps(header).encode(), waveforms, stamps]


def msg(what: int, frame: int = 0, **fields: object) -> bytes:
    return json.dumps({"htype": "msg", "what": what, "frame": frame, **fields}).encode()


SEQ_START = msg(1, ntriggers=1, seqno=0, channels=[2, 4])
SEQ_END = msg(2, frame=2)


# --- the recorded captures ---------------------------------------------------------------------


def test_read_raw_capture_reads_the_gzipped_captures(continuous, sequential):
    assert list(read_raw_capture(CONTINUOUS)) == continuous
    assert list(read_raw_capture(SEQUENTIAL)) == sequential


def test_continuous_message_order(continuous):
    assert [kind_of(frames) for frames in continuous] == [
        "prepare",
        "seq_start",
        "trace",
        "trace",
        "seq_end",
        "trace",
        "trace",
        "seq_end",
        "stop",
    ]


def test_sequential_message_order(sequential):
    assert [kind_of(frames) for frames in sequential] == [
        "prepare",
        "seq_start",
        "trace",
        "trace",
        "seq_end",
        "seq_start",
        "trace",
        "trace",
        "seq_end",
        "stop",
    ]


@pytest.mark.parametrize(
    "name, counts",
    [
        (
            "continuous",
            {LecroyPrepare: 1, LecroySeqStart: 1, LecroyParsed: 4, LecroySeqEnd: 2, LecroyEnd: 1},
        ),
        (
            "sequential",
            {LecroyPrepare: 1, LecroySeqStart: 2, LecroyParsed: 4, LecroySeqEnd: 2, LecroyEnd: 1},
        ),
    ],
)
def test_every_message_parses_and_counts_per_kind(captures, name, counts):
    parsed = [parse(StreamData(typ=LECROY_TYPE, frames=frames)) for frames in captures[name]]
    assert Counter(type(packet) for packet in parsed) == counts


@pytest.mark.parametrize("name", ["continuous", "sequential"])
def test_frame_counts_per_message(captures, name):
    for frames in captures[name]:
        assert len(frames) == (3 if kind_of(frames) == "trace" else 1)


def test_prepare_and_stop(captures):
    for items in captures.values():
        prepare = parse(lecroy(items[0][0]))
        stop = parse(lecroy(items[-1][0]))
        assert isinstance(prepare, LecroyPrepare)
        assert (prepare.htype, prepare.what, prepare.frame) == ("msg", 0, 0)
        assert isinstance(stop, LecroyEnd)
        # the stop message counts the trace messages of the run: 2 channels x 2 sequences
        assert (stop.what, stop.frame, stop.frames) == (3, 4, 4)
        assert stop.frames == len(trace_items(items))


def test_continuous_has_one_sequence_start_with_unbounded_triggers(continuous):
    starts = [parse(lecroy(*f)) for f in continuous if kind_of(f) == "seq_start"]
    assert len(starts) == 1
    assert (starts[0].ntriggers, starts[0].seqno, starts[0].channels) == (-1, 0, [2, 4])


def test_sequential_starts_every_sequence_with_its_number(sequential):
    starts = [parse(lecroy(*f)) for f in sequential if kind_of(f) == "seq_start"]
    assert [(s.ntriggers, s.seqno, s.channels, s.frame) for s in starts] == [
        (20, 0, [2, 4], 0),
        (20, 1, [2, 4], 2),
    ]


def test_sequence_ends_carry_the_trace_count_so_far(captures):
    for items in captures.values():
        ends = [parse(lecroy(*f)) for f in items if kind_of(f) == "seq_end"]
        assert all(isinstance(end, LecroySeqEnd) for end in ends)
        assert [end.frame for end in ends] == [2, 4]


@pytest.mark.parametrize("name, rows", [("continuous", 1), ("sequential", 20)])
def test_trace_headers(captures, name, rows):
    for number, frames in enumerate(trace_items(captures[name])):
        header = json.loads(frames[0])
        packet = parse(lecroy(*frames))
        assert isinstance(packet, LecroyParsed)
        assert packet.channels == [header["ch"]] == [[2, 4][number % 2]]
        assert packet.frame == number == header["frame"]
        meta = packet.meta[0]
        assert isinstance(meta, LecroyData)
        assert meta.shape == [rows, POINTS]
        assert meta.dtype == "float64"
        assert meta.ts == header["ts"]
        assert meta.horiz_interval == SAMPLE_INTERVAL
        assert meta.horiz_offset == header["horiz_offset"]
        assert -1.0001e-7 < meta.horiz_offset < -1.0e-7
        assert packet.start is None and packet.end is None
        assert packet.ntriggers is None and packet.seqno is None


@pytest.mark.parametrize("name, rows", [("continuous", 1), ("sequential", 20)])
def test_trace_waveforms_match_the_raw_bytes(captures, name, rows):
    for frames in trace_items(captures[name]):
        data = parse(lecroy(*frames)).data[0]
        values = float64s(frames[1])
        assert len(values) == rows * POINTS
        assert data.shape == (rows, POINTS)
        assert data.dtype == np.float64
        assert data[0, 0] == values[0] and data[-1, -1] == values[-1]
        assert data[rows - 1, 17] == values[(rows - 1) * POINTS + 17]
        reference = np.frombuffer(frames[1], dtype="<f8").reshape(rows, POINTS)
        assert data.sum() == reference.sum()
        assert data.sum() == pytest.approx(math.fsum(values), rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal(data, reference)


@pytest.mark.parametrize(
    "name, sums",
    [
        (
            "continuous",
            [-4.612455387273258, 2.2956097908208903, -1.4742626325778474, 9.381238144704184],
        ),
        (
            "sequential",
            [-69.83919732490449, 126.35549572623313, -56.78082577692294, 132.5713749658462],
        ),
    ],
)
def test_trace_sums(captures, name, sums):
    got = [float(parse(lecroy(*frames)).data[0].sum()) for frames in trace_items(captures[name])]
    assert got == pytest.approx(sums, rel=1e-12)


@pytest.mark.parametrize("name, rows", [("continuous", 1), ("sequential", 20)])
def test_trace_timestamps(captures, name, rows):
    for frames in trace_items(captures[name]):
        packet = parse(lecroy(*frames))
        expected = pickle.loads(frames[2])  # the test's own, trusted capture
        assert packet.timestamps == [expected]
        assert len(expected) == rows
        # the header's ts is the first trigger's time
        assert packet.meta[0].ts == expected[0]


def test_sequential_triggers_are_a_tenth_of_a_second_apart(sequential):
    for frames in trace_items(sequential):
        stamps = parse(lecroy(*frames)).timestamps[0]
        assert np.diff(stamps) == pytest.approx([0.1] * 19, abs=1e-5)


def test_continuous_trace_timestamps_are_not_monotonic(continuous):
    # recorded as is: the first trigger's time has microseconds, later ones milliseconds and
    # an earlier value
    stamps = [parse(lecroy(*f)).timestamps[0][0] for f in trace_items(continuous)]
    assert stamps == [1740563664.870739, 1740563664.870739, 1740563664.335, 1740563664.335]


def test_channels_of_one_trigger_share_the_timestamps(captures):
    for items in captures.values():
        traces = [parse(lecroy(*f)) for f in trace_items(items)]
        for ch2, ch4 in zip(traces[::2], traces[1::2]):
            assert (ch2.channels, ch4.channels) == ([2], [4])
            assert ch2.timestamps == ch4.timestamps


def test_waveforms_are_read_only_views_of_bytes_frames(sequential):
    frames = trace_items(sequential)[0]
    data = parse(lecroy(*frames)).data[0]
    assert not data.flags.writeable
    assert not data.flags.owndata


def test_waveforms_are_views_of_writable_frames(sequential):
    header, raw, stamps = trace_items(sequential)[0]
    buf = bytearray(raw)
    data = parse(lecroy(header, buf, stamps)).data[0]
    buf[0:8] = struct.pack("<d", 42.0)
    assert data[0, 0] == 42.0


def test_waveforms_from_zmq_frames_are_views(continuous):
    header, raw, stamps = trace_items(continuous)[0]
    frames = [zmq.Frame(header), zmq.Frame(raw), zmq.Frame(stamps)]
    packet = parse(lecroy(*frames))
    assert packet.data[0][0, 0] == float64s(raw)[0]
    assert np.shares_memory(packet.data[0], np.frombuffer(frames[1].buffer, dtype=np.uint8))
    assert packet.timestamps == [pickle.loads(stamps)]


def test_typ_is_not_checked(continuous):
    assert isinstance(parse(lecroy(continuous[0][0], typ="oscc-02")), LecroyPrepare)


# --- grouped sequences (one message per sequence, as the original ingester forwards) ----------


def test_sequential_sequence_as_one_message(sequential):
    frames = [f for item in sequential[1:5] for f in item]
    packet = parse(lecroy(*frames))
    assert isinstance(packet, LecroyParsed)
    assert packet.channels == [2, 4]
    assert (packet.ntriggers, packet.seqno, packet.frame) == (20, 0, 0)
    assert packet.start == parse(lecroy(sequential[1][0]))
    assert packet.end == parse(lecroy(sequential[4][0]))
    assert [m.ch for m in packet.meta] == [2, 4]
    for data, raw in zip(packet.data, [sequential[2][1], sequential[3][1]]):
        np.testing.assert_array_equal(data, np.frombuffer(raw, "<f8").reshape(20, POINTS))
    assert packet.timestamps == [pickle.loads(sequential[2][2]), pickle.loads(sequential[3][2])]


def test_continuous_trigger_with_the_cached_start(continuous):
    # the original ingester repeats the run's only sequence start before every trigger
    start = continuous[1]
    second = [f for item in continuous[5:8] for f in item]
    packet = parse(lecroy(*start, *second))
    # frame is the start's, as the original dranspose copies it; the traces keep their own
    assert (packet.ntriggers, packet.seqno, packet.frame) == (-1, 0, 0)
    assert [m.frame for m in packet.meta] == [json.loads(f[0])["frame"] for f in continuous[5:7]]
    assert packet.channels == [2, 4]
    assert packet.end is not None and packet.end.frame == 4
    assert [d.shape for d in packet.data] == [(1, POINTS), (1, POINTS)]


def test_traces_without_start_or_end_group(continuous):
    frames = [f for item in continuous[2:4] for f in item]
    packet = parse(lecroy(*frames))
    assert packet.channels == [2, 4]
    assert packet.start is None and packet.end is None


def test_traces_then_sequence_end(continuous):
    packet = parse(lecroy(*continuous[2], *continuous[4]))
    assert packet.channels == [2]
    assert packet.end == LecroySeqEnd(frame=2)


# --- building frames --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "packet",
    [
        LecroyPrepare(frame=0),
        LecroySeqStart(frame=0, ntriggers=20, seqno=3, channels=[1, 3]),
        LecroySeqEnd(frame=6),
        LecroyEnd(frame=6, frames=6),
    ],
)
def test_control_packets_round_trip(packet):
    stream = packet.to_stream_data()
    assert stream.typ == LECROY_TYPE
    assert len(stream.frames) == 1
    assert json.loads(stream.frames[0])["htype"] == "msg"
    assert parse(stream) == packet


def test_parsed_round_trip_rebuilds_the_device_frames(sequential):
    frames = [f for item in sequential[1:5] for f in item]
    packet = parse(lecroy(*frames))
    rebuilt = packet.to_stream_data(typ="lecroy-2").frames
    assert len(rebuilt) == len(frames) == 8
    # waveforms and the timestamp pickle are byte-identical to what the device sent
    assert [rebuilt[i] for i in (2, 3, 5, 6)] == [frames[i] for i in (2, 3, 5, 6)]
    assert [json.loads(rebuilt[i]) == json.loads(frames[i]) for i in (0, 1, 4, 7)] == [True] * 4
    again = parse(lecroy(*rebuilt))
    assert again.model_dump() == packet.model_dump()
    for a, b in zip(again.data, packet.data):
        np.testing.assert_array_equal(a, b)


def test_parsed_to_stream_data_checks_shapes():
    packet = parse(lecroy(*trace_frames(shape=(1, 4))))
    packet.data[0] = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"header shape is \[1, 4\] but data has shape \[2, 4\]"):
        packet.to_stream_data()


def test_packet_adapter_tells_messages_apart(continuous):
    packets = [LecroyPacketAdapter.validate_json(f[0]) for f in continuous]
    assert [type(p).__name__ for p in packets] == [
        "LecroyPrepare",
        "LecroySeqStart",
        "LecroyData",
        "LecroyData",
        "LecroySeqEnd",
        "LecroyData",
        "LecroyData",
        "LecroySeqEnd",
        "LecroyEnd",
    ]


def test_packet_adapter_rejects_unknown_what():
    with pytest.raises(ValidationError):
        LecroyPacketAdapter.validate_python({"htype": "msg", "what": 7, "frame": 0})


def test_extra_fields_are_kept():
    packet = parse(lecroy(msg(0, source="maui-02")))
    assert packet.source == "maui-02"
    meta = parse(lecroy(*trace_frames(gain=2.5))).meta[0]
    assert meta.gain == 2.5


# --- malformed input ------------------------------------------------------------------------


def test_no_frames():
    assert parse_error(lecroy()) == (
        "lecroy message has no frames; expected a JSON header in frame 0"
    )


def test_header_not_json():
    message = parse_error(lecroy(b"\x80\x04garbage"))
    assert message.startswith("lecroy frame 0 (header): not valid JSON (")
    assert message.endswith("); expected a JSON object with an 'htype' field")


def test_header_json_array():
    assert parse_error(lecroy(b"[1, 2]")) == (
        "lecroy frame 0 (header): got JSON list [1, 2]; expected a JSON object with an "
        "'htype' field"
    )


def test_header_not_a_buffer():
    assert parse_error(lecroy(12)).startswith("lecroy frame 0 (header): got a int, expected bytes")


def test_unknown_htype():
    assert parse_error(lecroy(b'{"htype": "image", "frame": 0}')) == (
        "lecroy frame 0 (header): htype 'image'; expected htype to be 'msg' or 'traces'"
    )


def test_missing_htype():
    assert parse_error(lecroy(b'{"what": 0, "frame": 0}')) == (
        "lecroy frame 0 (header): no 'htype' field; expected htype to be 'msg' or 'traces'"
    )


@pytest.mark.parametrize("what", [4, -1, "1", True, None])
def test_unknown_what(what):
    message = parse_error(lecroy(json.dumps({"htype": "msg", "what": what, "frame": 0}).encode()))
    assert message == (
        f"lecroy frame 0 (header): what {what!r}; expected what to be 0 (prepare), "
        f"1 (sequence start), 2 (sequence end) or 3 (stop)"
    )


def test_missing_what():
    assert parse_error(lecroy(b'{"htype": "msg", "frame": 0}')) == (
        "lecroy frame 0 (header): no 'what' field; expected what to be 0 (prepare), "
        "1 (sequence start), 2 (sequence end) or 3 (stop)"
    )


def test_sequence_start_missing_fields():
    message = parse_error(lecroy(msg(1, ntriggers=5)))
    assert message == (
        "lecroy frame 0 (header): invalid sequence start header: seqno is missing; "
        "channels is missing"
    )


def test_stop_without_frame_count():
    assert parse_error(lecroy(msg(3))) == (
        "lecroy frame 0 (header): invalid stop header: frames is missing"
    )


def test_trace_header_with_wrong_types():
    message = parse_error(lecroy(*trace_frames(ch="two", shape=(1, 4))))
    assert message.startswith("lecroy frame 0 (header): invalid trace header: ch: ")
    assert message.endswith("got 'two'")


def test_control_message_with_extra_frames():
    assert parse_error(lecroy(msg(0), b"x")) == (
        "lecroy message has 2 frames but frame 0 is a prepare message; expected exactly one "
        "frame, or traces after a sequence start"
    )


@pytest.mark.parametrize("keep", [1, 2])
def test_trace_message_missing_frames(keep):
    frames = trace_frames()[:keep]
    assert parse_error(lecroy(*frames)) == (
        f"lecroy frame 0 (channel 2 trace header): the message ends after {keep - 1} of the "
        f"waveform and timestamp frames that follow it; expected 3 frames per trace"
    )


def test_waveforms_of_wrong_length():
    header, raw, stamps = trace_frames(shape=(2, 4))
    assert parse_error(lecroy(header, raw[:-8], stamps)) == (
        "lecroy frame 1 (channel 2 waveforms): 56 bytes, expected 64 bytes for shape [2, 4] "
        "of float64 (8 bytes each)"
    )


def test_truncated_capture_waveform(sequential):
    header, raw, stamps = trace_items(sequential)[0]
    message = parse_error(lecroy(header, raw[: len(raw) // 2], stamps))
    assert message == (
        "lecroy frame 1 (channel 2 waveforms): 640160 bytes, expected 1280320 bytes for shape "
        "[20, 8002] of float64 (8 bytes each)"
    )


def test_negative_shape():
    header, raw, stamps = trace_frames()
    bad = json.loads(header)
    bad["shape"] = [-1, 4]
    assert parse_error(lecroy(json.dumps(bad).encode(), raw, stamps)) == (
        "lecroy frame 1 (channel 2 waveforms): header shape [-1, 4] has a negative dimension"
    )


@pytest.mark.parametrize("dtype", ["object", "str", "float65", "V8"])
def test_non_numeric_dtype(dtype):
    header, raw, stamps = trace_frames()
    bad = json.loads(header)
    bad["dtype"] = dtype
    assert parse_error(lecroy(json.dumps(bad).encode(), raw, stamps)) == (
        f"lecroy frame 1 (channel 2 waveforms): header dtype {dtype!r} is not a numeric numpy "
        f"dtype; expected a name such as 'float64'"
    )


def test_other_numeric_dtypes_are_decoded():
    header, _, stamps = trace_frames(shape=(1, 3), dtype="int16")
    raw = struct.pack("<3h", -1, 2, 300)
    packet = parse(lecroy(header, raw, stamps))
    assert packet.data[0].dtype == np.int16
    assert packet.data[0].tolist() == [[-1, 2, 300]]


def test_timestamps_not_a_pickle():
    header, raw, _ = trace_frames()
    message = parse_error(lecroy(header, raw, b"not a pickle"))
    assert message.startswith("lecroy frame 2 (channel 2 timestamps): ")


def test_timestamps_pickle_naming_a_callable_is_refused():
    header, raw, _ = trace_frames()
    evil = b"cos\nsystem\n(S'echo hacked'\ntR."
    message = parse_error(lecroy(header, raw, evil))
    assert message.startswith(
        "lecroy frame 2 (channel 2 timestamps): refused pickle global 'os.system'"
    )


def test_timestamps_not_a_list():
    header, raw, _ = trace_frames()
    assert parse_error(lecroy(header, raw, pickle.dumps({"ts": 1.0}))) == (
        "lecroy frame 2 (channel 2 timestamps): the pickle holds a dict; expected a list of numbers"
    )


@pytest.mark.parametrize("item", ["1.0", None, True, [1.0]])
def test_timestamps_holding_non_numbers(item):
    header, raw, _ = trace_frames()
    message = parse_error(lecroy(header, raw, pickle.dumps([item])))
    assert message == (
        f"lecroy frame 2 (channel 2 timestamps): the list holds a {type(item).__name__}; "
        f"expected only numbers"
    )


def test_timestamps_count_must_match_the_triggers():
    header, raw, _ = trace_frames(shape=(2, 2))
    assert parse_error(lecroy(header, raw, pickle.dumps([1.0]))) == (
        "lecroy frame 2 (channel 2 timestamps): 1 timestamps for waveforms of shape [2, 2]; "
        "expected one per trigger (2)"
    )


def test_integer_and_numpy_timestamps_become_floats():
    header, raw, _ = trace_frames(shape=(2, 2))
    packet = parse(lecroy(header, raw, pickle.dumps([1, np.float64(2.5)])))
    assert packet.timestamps == [[1.0, 2.5]]
    assert [type(t) for t in packet.timestamps[0]] == [float, float]


def test_sequence_start_channels_must_match_the_traces():
    frames = [SEQ_START, *trace_frames(ch=2), SEQ_END]
    assert parse_error(lecroy(*frames)) == (
        "lecroy: the sequence start announces channels [2, 4] but the message holds traces of "
        "channels [2]; expected one trace per announced channel"
    )


def test_sequence_end_in_the_middle():
    frames = [SEQ_START, *trace_frames(ch=2), SEQ_END, *trace_frames(ch=4)]
    assert parse_error(lecroy(*frames)) == (
        "lecroy frame 4: got a sequence end message inside a trace message; expected a trace "
        "header, or a sequence end as the last frame"
    )


def test_second_sequence_start_inside_a_group():
    frames = [*trace_frames(ch=2), SEQ_START]
    assert parse_error(lecroy(*frames)) == (
        "lecroy frame 3: got a sequence start message inside a trace message; expected a "
        "trace header, or a sequence end as the last frame"
    )


def test_errors_in_later_traces_name_their_frame():
    second = trace_frames(ch=4)
    frames = [SEQ_START, *trace_frames(ch=2), second[0], second[1][:-1], second[2], SEQ_END]
    assert parse_error(lecroy(*frames)) == (
        "lecroy frame 5 (channel 4 waveforms): 31 bytes, expected 32 bytes for shape [1, 4] "
        "of float64 (8 bytes each)"
    )


def test_errors_name_the_stream_type():
    assert parse_error(lecroy(b"{}", typ="oscc_02")).startswith("oscc_02 frame 0 (header):")


def test_parse_errors_are_value_errors_with_a_cause():
    with pytest.raises(ValueError) as info:
        parse(lecroy(msg(1)))
    assert isinstance(info.value.__cause__, ValidationError)


def test_stop_without_htype_as_the_original_builds_it():
    # the original's LecroyEnd has no htype field; its dump is still a stop message
    packet = parse(lecroy(b'{"frame": 4, "frames": 4, "what": 3}'))
    assert packet == LecroyEnd(frame=4, frames=4)

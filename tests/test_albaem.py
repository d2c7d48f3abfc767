"""AlbaEM electrometer packets: the recorded capture, building frames, malformed input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cbor2
import numpy as np
import pytest
import zmq
from pydantic import ValidationError

from dranspose.core.event import StreamData
from dranspose.protocols.albaem.packets import (
    ALBAEM_TYPE,
    AlbaemData,
    AlbaemEnd,
    AlbaemPacketAdapter,
    AlbaemStart,
)
from dranspose.protocols.albaem.parser import parse
from dranspose.protocols.common.errors import ParseError

CAPTURE = Path(__file__).parent / "data" / "albaem-dump.cbors"
CHANNELS = ["channel1", "channel2", "channel3", "channel4"]
# the readings as the capture's JSON spells them, one row per data message
READINGS = [
    [-2.8302592615927417e-11, -6.091210149949596e-11, 2.5349278603830644e-10, 4.80528800718246e-10],
    [-2.399567634828629e-11, -7.260230279737902e-11, 2.4918586977066537e-10, 4.866815382434476e-10],
    [-2.2149855090725806e-11, -7.813976657006048e-11, 2.621066185735887e-10, 4.916037282636089e-10],
    [-9.84438004032258e-12, -6.091210149949596e-11, 2.5533860729586694e-10, 4.76837158203125e-10],
]


def read_capture_items() -> list[list[bytes]]:
    """Every item of the raw capture (the frames of one ZMQ message), decoded with plain cbor2."""
    items = []
    with CAPTURE.open("rb") as fh:
        decoder = cbor2.CBORDecoder(fh)
        while True:
            try:
                items.append(list(decoder.decode()))
            except cbor2.CBORDecodeEOF:
                return items


@pytest.fixture(scope="module")
def raw() -> list[list[bytes]]:
    return read_capture_items()


@pytest.fixture(scope="module")
def decoded(raw) -> list[dict]:
    return [json.loads(frames[0]) for frames in raw]


@pytest.fixture(scope="module")
def parsed(raw) -> list:
    return [parse(StreamData(typ=ALBAEM_TYPE, frames=frames)) for frames in raw]


def albaem(*frames: object, typ: str = ALBAEM_TYPE) -> StreamData:
    return StreamData.model_construct(typ=typ, frames=list(frames))


def data_message(**fields: object) -> bytes:
    message = {
        "version": 1,
        "message_type": "data",
        "message_id": 2,
        "frame_number": 0,
        "timestamp": 7.5,
        "acquisition_timestamp": 1704807770443944912,
        "channel1": 1e-10,
    }
    message.update(fields)
    return json.dumps({k: v for k, v in message.items() if v is not ...}).encode()


# --- the recorded capture -----------------------------------------------------------------------


def test_capture_is_one_series_of_single_frame_messages(raw, decoded):
    assert len(raw) == 6
    assert all(len(frames) == 1 for frames in raw)
    types = [message["message_type"] for message in decoded]
    assert types == ["series-start", "data", "data", "data", "data", "series-end"]


def test_every_message_parses_to_its_packet_class(parsed):
    assert [type(packet) for packet in parsed] == [
        AlbaemStart,
        AlbaemData,
        AlbaemData,
        AlbaemData,
        AlbaemData,
        AlbaemEnd,
    ]
    assert [packet.message_id for packet in parsed] == [1, 2, 3, 4, 5, 6]
    assert all(packet.version == 1 for packet in parsed)


def test_start(parsed):
    assert parsed[0].model_dump() == {
        "message_id": 1,
        "version": 1,
        "message_type": "series-start",
    }


def test_end_keeps_the_overflow_flags(parsed):
    end = parsed[-1]
    assert end.model_extra == {
        "detector_specific": {"read_overflow": False, "memory_overflow": False}
    }


@pytest.mark.parametrize("index", range(1, 5))
def test_data_matches_an_independent_decode(raw, parsed, index):
    expected = json.loads(raw[index][0])
    packet = parsed[index]
    assert packet.frame_number == expected["frame_number"] == index - 1
    assert packet.timestamp == expected["timestamp"]
    assert packet.acquisition_timestamp == expected["acquisition_timestamp"]
    assert type(packet.acquisition_timestamp) is int
    assert packet.channels == {name: expected[name] for name in CHANNELS}
    assert list(packet.channels.values()) == READINGS[index - 1]


def test_concrete_values_of_the_first_reading(parsed):
    packet = parsed[1]
    assert packet.timestamp == 7.72645192
    assert packet.acquisition_timestamp == 1704807770443944912
    assert packet.channel1 == -2.8302592615927417e-11
    assert packet.channel4 == 4.80528800718246e-10


def test_channel_sums_over_the_series(parsed, decoded):
    for name in CHANNELS:
        values = [packet.channels[name] for packet in parsed[1:-1]]
        assert math.fsum(values) == math.fsum(message[name] for message in decoded[1:-1])
    table = np.array([list(packet.channels.values()) for packet in parsed[1:-1]])
    assert table.shape == (4, 4)
    np.testing.assert_array_equal(table, np.array(READINGS))
    assert table[:, 0].sum() == pytest.approx(-8.42925040952621e-11, rel=1e-12)
    assert table[:, 3].sum() == pytest.approx(1.9356512254284275e-09, rel=1e-12)


def test_timestamps_increase(parsed):
    stamps = [packet.timestamp for packet in parsed[1:-1]]
    assert stamps == [7.72645192, 10.86213192, 14.84581192, 20.66757192]
    nanos = [packet.acquisition_timestamp for packet in parsed[1:-1]]
    assert nanos == sorted(nanos)
    assert nanos[-1] - nanos[0] == 12941120000


def test_zmq_frames_parse_like_bytes(raw, parsed):
    assert parse(albaem(zmq.Frame(raw[2][0]))) == parsed[2]


def test_other_stream_types_are_accepted(raw):
    assert isinstance(parse(albaem(raw[0][0], typ="em1")), AlbaemStart)


def test_adapter_validates_json(raw):
    packet = AlbaemPacketAdapter.validate_json(raw[3][0])
    assert isinstance(packet, AlbaemData)
    assert packet.channel3 == 2.621066185735887e-10


def test_str_of_data(parsed):
    assert str(parsed[1]) == (
        "message_id=2 version=1 message_type='data' frame_number=0 timestamp=7.72645192 "
        "acquisition_timestamp=1704807770443944912 channel1=-2.8302592615927417e-11 "
        "channel2=-6.091210149949596e-11 channel3=2.5349278603830644e-10 "
        "channel4=4.80528800718246e-10"
    )


# --- channels -----------------------------------------------------------------------------------


def test_channels_are_ordered_by_number():
    packet = parse(albaem(data_message(channel10=3.0, channel2=2.0, channel1=1.0)))
    assert list(packet.channels) == ["channel1", "channel2", "channel10"]


def test_integer_channel_readings_become_floats():
    packet = parse(albaem(data_message(channel1=0, channel2=-3)))
    assert packet.channels == {"channel1": 0.0, "channel2": -3.0}
    assert type(packet.channel1) is float


def test_other_extras_are_not_channels():
    packet = parse(albaem(data_message(range="1mA", channel_gain="x")))
    assert packet.channels == {"channel1": 1e-10}
    assert packet.model_extra["range"] == "1mA"


# --- building frames ----------------------------------------------------------------------------


def test_data_round_trip(parsed):
    stream = parsed[2].to_stream_data()
    assert stream.typ == "albaem"
    assert len(stream.frames) == 1
    assert json.loads(stream.frames[0]) == json.loads(read_capture_items()[2][0])
    assert parse(stream) == parsed[2]


def test_end_round_trip(parsed):
    assert parse(parsed[-1].to_stream_data(typ="em")) == parsed[-1]


def test_constructor_checks_channels():
    with pytest.raises(ValidationError, match="channel2 must be a number"):
        AlbaemData(
            message_id=2,
            version=1,
            message_type="data",
            frame_number=0,
            timestamp=1.0,
            acquisition_timestamp=1,
            channel2="high",
        )


# --- malformed input ----------------------------------------------------------------------------


def parse_error(stream: StreamData) -> str:
    with pytest.raises(ParseError) as info:
        parse(stream)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_error_no_frames():
    message = parse_error(albaem())
    assert message == "albaem stream: no frames; expected exactly one frame holding a JSON object"


def test_error_two_frames(raw):
    message = parse_error(albaem(raw[1][0], raw[2][0]))
    assert message.startswith("albaem stream: 2 frames; expected exactly one frame")


def test_error_not_json():
    message = parse_error(albaem(b"channel1=3"))
    assert message.startswith("albaem frame 0: not valid JSON (")


def test_error_not_json_chains_the_decoder_error():
    with pytest.raises(ParseError) as info:
        parse(albaem(b"{"))
    assert isinstance(info.value.__cause__, ValueError)


def test_error_not_an_object():
    message = parse_error(albaem(b'"data"'))
    assert "got a JSON string, expected a JSON object" in message


def test_error_unknown_message_type():
    message = parse_error(albaem(b'{"message_type": "heartbeat", "message_id": 9, "version": 1}'))
    assert message == (
        "albaem frame 0: message_type 'heartbeat'; expected message_type to be one of "
        "'series-start', 'data', 'series-end'"
    )


def test_error_missing_message_type():
    message = parse_error(albaem(b'{"message_id": 9, "version": 1}'))
    assert "no 'message_type' field" in message


def test_error_missing_timestamp():
    message = parse_error(albaem(data_message(timestamp=...)))
    assert message == "albaem frame 0: invalid 'data' message: timestamp is missing"


def test_error_missing_field_chains_the_validation_error():
    with pytest.raises(ParseError) as info:
        parse(albaem(data_message(timestamp=...)))
    assert isinstance(info.value.__cause__, ValidationError)


def test_error_fractional_acquisition_timestamp():
    message = parse_error(albaem(data_message(acquisition_timestamp=1.5)))
    assert "acquisition_timestamp: Input should be a valid integer" in message


def test_error_unsupported_version():
    message = parse_error(albaem(data_message(version=2)))
    assert message == "albaem frame 0: invalid 'data' message: version: Input should be 1, got 2"


@pytest.mark.parametrize(
    ("value", "shown"),
    [("1e-10", "'1e-10'"), (None, "None"), (True, "True"), ([1e-10], "[1e-10]")],
)
def test_error_channel_not_a_number(value, shown):
    message = parse_error(albaem(data_message(channel3=value)))
    assert message == (
        f"albaem frame 0: invalid 'data' message: channel3 must be a number, got {shown}"
    )


def test_error_names_the_stream_type():
    message = parse_error(albaem(b"[]", typ="em2"))
    assert message.startswith("em2 frame 0:")

"""PandA position capture ("pcap") packets: the capture, building frames, malformed input."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import cbor2
import numpy as np
import pytest
import zmq
from pydantic import ValidationError

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.pcap.packets import (
    PCAP_TYPE,
    PCAPData,
    PCAPEnd,
    PCAPPacketAdapter,
    PCAPStart,
)
from dranspose.protocols.pcap.parser import parse

CAPTURE = Path(__file__).parent / "data" / "pcap-zmq.cbors"
FIELDS = ["inttime", "triggernumber", "repeatindex", "energy", "INENC3.VAL.Mean"]


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
    """The capture decoded independently of the parser: json of the only frame."""
    return [json.loads(frames[0]) for frames in raw]


@pytest.fixture(scope="module")
def parsed(raw) -> list:
    return [parse(StreamData(typ=PCAP_TYPE, frames=frames)) for frames in raw]


def pcap(*frames: object, typ: str = PCAP_TYPE) -> StreamData:
    return StreamData.model_construct(typ=typ, frames=list(frames))


def data_message(**fields: object) -> bytes:
    message = {"message_id": 2, "message_type": "data", "version": 1, "frame_number": 0}
    message.update(fields)
    return json.dumps({k: v for k, v in message.items() if v is not ...}).encode()


# --- the recorded capture -----------------------------------------------------------------------


def test_capture_is_one_series_of_single_frame_messages(raw, decoded):
    assert len(raw) == 102
    assert all(len(frames) == 1 for frames in raw)
    types = [message["message_type"] for message in decoded]
    assert types == ["series-start"] + ["data"] * 100 + ["series-end"]


def test_every_message_parses_to_its_packet_class(parsed):
    assert isinstance(parsed[0], PCAPStart)
    assert all(isinstance(packet, PCAPData) for packet in parsed[1:-1])
    assert isinstance(parsed[-1], PCAPEnd)
    assert [packet.message_id for packet in parsed] == list(range(1, 103))
    assert all(packet.version == 1 for packet in parsed)


def test_start_carries_the_arm_time(parsed):
    start = parsed[0]
    assert start.arm_time == datetime(2024, 10, 7, 8, 49, 10, 627000, tzinfo=timezone.utc)
    assert start.model_extra == {}


def test_end_has_nothing_else(parsed):
    assert parsed[-1].model_dump() == {
        "message_id": 102,
        "version": 1,
        "message_type": "series-end",
    }


def test_data_fields_are_the_captured_columns_in_order(parsed):
    for packet in parsed[1:-1]:
        assert list(packet.fields) == FIELDS
        assert list(packet.model_extra) == FIELDS


@pytest.mark.parametrize("index", range(1, 101))
def test_data_fields_match_an_independent_decode(raw, parsed, index):
    expected = json.loads(raw[index][0])
    packet = parsed[index]
    assert packet.frame_number == expected["frame_number"]
    assert packet.rows == len(expected["energy"])
    for name in FIELDS:
        column = packet.fields[name]
        assert column.dtype == np.float64
        assert column.shape == (len(expected[name]),)
        np.testing.assert_array_equal(column, np.array(expected[name], dtype=np.float64))


def test_rows_per_message(parsed, decoded):
    rows = [packet.rows for packet in parsed[1:-1]]
    assert rows == [len(message["inttime"]) for message in decoded[1:-1]]
    assert set(rows) == {14, 15, 16}
    assert sum(rows) == 1500


def test_frame_number_is_the_index_of_the_first_row(parsed):
    position = 0
    for packet in parsed[1:-1]:
        assert packet.frame_number == position
        position += packet.rows
    assert parsed[-2].frame_number == 1485


def test_whole_series_totals(parsed, decoded):
    data = decoded[1:-1]
    for name in FIELDS:
        expected = [value for message in data for value in message[name]]
        series = np.concatenate([packet.fields[name] for packet in parsed[1:-1]])
        assert series.shape == (1500,)
        assert series[0] == expected[0]
        assert series[-1] == expected[-1]
        assert math.fsum(series.tolist()) == math.fsum(expected)


def test_whole_series_concrete_values(parsed):
    series = {
        name: np.concatenate([packet.fields[name] for packet in parsed[1:-1]]) for name in FIELDS
    }
    np.testing.assert_array_equal(series["triggernumber"], np.arange(1, 1501, dtype=np.float64))
    np.testing.assert_array_equal(series["repeatindex"], np.ones(1500))
    np.testing.assert_array_equal(series["INENC3.VAL.Mean"], np.zeros(1500))
    assert series["energy"][0] == 8879.101048716273
    assert series["energy"][-1] == 9178.90056771702
    assert series["energy"].sum() == pytest.approx(13543500.21688024, rel=1e-12)
    assert series["inttime"][0] == 7.1160000000000005
    assert series["inttime"][-1] == 6.5178
    assert series["inttime"].sum() == pytest.approx(9986.5638, rel=1e-12)
    assert series["inttime"].min() == 6.015000000000001
    assert series["inttime"].max() == 7.6226
    assert np.all(np.diff(series["energy"]) > 0)


def test_fields_are_attributes_when_the_name_allows(parsed):
    packet = parsed[1]
    assert packet.energy is packet.fields["energy"]
    assert getattr(packet, "INENC3.VAL.Mean") is packet.fields["INENC3.VAL.Mean"]


def test_zmq_frames_parse_like_bytes(raw, parsed):
    packet = parse(pcap(zmq.Frame(raw[5][0])))
    for name in FIELDS:
        np.testing.assert_array_equal(packet.fields[name], parsed[5].fields[name])


def test_other_stream_types_are_accepted(raw):
    assert isinstance(parse(pcap(raw[-1][0], typ="pcap-zmq")), PCAPEnd)


def test_adapter_turns_lists_into_arrays_too(raw):
    packet = PCAPPacketAdapter.validate_json(raw[1][0])
    assert isinstance(packet, PCAPData)
    assert isinstance(packet.energy, np.ndarray)
    assert packet.rows == 15


def test_str_of_start(parsed):
    assert str(parsed[0]) == (
        "message_id=1 version=1 message_type='series-start' arm_time="
        "datetime.datetime(2024, 10, 7, 8, 49, 10, 627000, tzinfo=TzInfo(0))"
    )


# --- JSON arrays of other kinds ------------------------------------------------------------------


def test_integer_lists_become_int64():
    packet = parse(pcap(data_message(counter=[1, 2, 3], bits=[0, 255, 7])))
    assert packet.fields["counter"].dtype == np.int64
    np.testing.assert_array_equal(packet.fields["bits"], [0, 255, 7])


def test_mixed_integers_and_floats_become_float64():
    packet = parse(pcap(data_message(x=[1, 2.5, 3])))
    assert packet.x.dtype == np.float64
    np.testing.assert_array_equal(packet.x, [1.0, 2.5, 3.0])


def test_empty_block_has_no_rows():
    packet = parse(pcap(data_message(x=[], y=[])))
    assert packet.rows == 0
    assert packet.fields["x"].shape == (0,)


def test_data_without_fields():
    packet = parse(pcap(data_message()))
    assert packet.fields == {}
    assert packet.rows == 0


def test_scalar_extras_are_kept_but_are_not_fields():
    packet = parse(pcap(data_message(x=[1.0], note="ok", gain=2)))
    assert list(packet.fields) == ["x"]
    assert packet.model_extra["note"] == "ok"
    assert packet.gain == 2


def test_unknown_start_fields_are_kept():
    message = {
        "message_id": 1,
        "message_type": "series-start",
        "version": 1,
        "arm_time": "2024-10-07T08:49:10.627Z",
        "fields": ["energy"],
    }
    packet = parse(pcap(json.dumps(message).encode()))
    assert packet.model_extra == {"fields": ["energy"]}


# --- building frames ----------------------------------------------------------------------------


def test_data_round_trip(parsed):
    packet = parsed[1]
    stream = packet.to_stream_data()
    assert stream.typ == "PCAP"
    assert len(stream.frames) == 1
    again = parse(stream)
    assert again.frame_number == 0
    assert list(again.fields) == FIELDS
    for name in FIELDS:
        np.testing.assert_array_equal(again.fields[name], packet.fields[name])


def test_data_frame_writes_fields_as_json_lists():
    packet = PCAPData.from_fields(
        {"energy": np.array([8879.5, 8879.7]), "COUNTER1.OUT": [3, 4]},
        message_id=7,
        frame_number=30,
    )
    assert json.loads(packet.message_frame()) == {
        "message_id": 7,
        "version": 1,
        "message_type": "data",
        "frame_number": 30,
        "energy": [8879.5, 8879.7],
        "COUNTER1.OUT": [3, 4],
    }


def test_from_fields_keeps_the_arrays():
    energy = np.linspace(0, 1, 5)
    packet = PCAPData.from_fields({"energy": energy}, message_id=2, frame_number=0)
    assert packet.energy is energy
    assert packet.rows == 5


def test_start_and_end_round_trip():
    start = PCAPStart(
        message_id=1, version=1, message_type="series-start", arm_time="2024-10-07T08:49:10.627Z"
    )
    assert parse(start.to_stream_data()) == start
    end = PCAPEnd(message_id=3, version=1, message_type="series-end")
    assert parse(end.to_stream_data(typ="panda")).model_dump() == end.model_dump()


def test_to_stream_data_keeps_the_stream_type():
    end = PCAPEnd(message_id=3, version=1, message_type="series-end")
    assert end.to_stream_data(typ="panda").typ == "panda"


def test_constructor_rejects_ragged_fields():
    with pytest.raises(ValidationError, match="different numbers of rows"):
        PCAPData.from_fields({"a": [1, 2], "b": [1]}, message_id=2, frame_number=0)


# --- malformed input ----------------------------------------------------------------------------


def parse_error(stream: StreamData) -> str:
    with pytest.raises(ParseError) as info:
        parse(stream)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_error_no_frames():
    message = parse_error(pcap())
    assert message == "PCAP stream: no frames; expected exactly one frame holding a JSON object"


def test_error_two_frames(raw):
    message = parse_error(pcap(raw[1][0], b"\0" * 8))
    assert message == "PCAP stream: 2 frames; expected exactly one frame holding a JSON object"


def test_error_not_json():
    message = parse_error(pcap(b'{"message_type": "data"'))
    assert message.startswith("PCAP frame 0: not valid JSON (")


def test_error_not_json_chains_the_decoder_error():
    with pytest.raises(ParseError) as info:
        parse(pcap(b"\xff\xfe"))
    assert isinstance(info.value.__cause__, ValueError)


def test_error_not_an_object():
    message = parse_error(pcap(b"[1, 2]"))
    assert "got a JSON array, expected a JSON object with a 'message_type' field" in message


def test_error_frame_not_bytes():
    message = parse_error(pcap(12345))
    assert message.startswith("PCAP frame 0: got a int, expected bytes")


def test_error_unknown_message_type():
    message = parse_error(pcap(b'{"message_type": "image", "message_id": 1, "version": 1}'))
    assert message == (
        "PCAP frame 0: message_type 'image'; expected message_type to be one of "
        "'series-start', 'data', 'series-end'"
    )


def test_error_missing_message_type():
    message = parse_error(pcap(b'{"message_id": 1, "version": 1}'))
    assert "no 'message_type' field" in message


def test_error_unsupported_version():
    message = parse_error(pcap(data_message(version=2)))
    assert message == "PCAP frame 0: invalid 'data' message: version: Input should be 1, got 2"


def test_error_missing_frame_number():
    message = parse_error(pcap(data_message(frame_number=..., x=[1.0])))
    assert message == "PCAP frame 0: invalid 'data' message: frame_number is missing"


def test_error_missing_field_chains_the_validation_error():
    with pytest.raises(ParseError) as info:
        parse(pcap(data_message(frame_number=...)))
    assert isinstance(info.value.__cause__, ValidationError)


def test_error_bad_arm_time():
    message = parse_error(
        pcap(b'{"message_type": "series-start", "message_id": 1, "version": 1, "arm_time": "x"}')
    )
    assert message.startswith("PCAP frame 0: invalid 'series-start' message: arm_time: ")


def test_error_ragged_fields():
    message = parse_error(pcap(data_message(a=[1.0, 2.0], b=[1.0])))
    assert message == (
        "PCAP frame 0: invalid 'data' message: captured fields have different numbers of rows "
        "('a': 2, 'b': 1); expected one value per row in every field"
    )


@pytest.mark.parametrize(
    "column",
    [[1.0, "x"], [1.0, None], [{"a": 1}], [2**70]],
    ids=["string", "null", "object", "too-large-int"],
)
def test_error_non_numeric_field(column):
    message = parse_error(pcap(data_message(energy=column)))
    assert message.startswith("PCAP frame 0: invalid 'data' message: field 'energy' holds ")
    assert message.endswith("expected numbers only")


def test_error_nested_field():
    message = parse_error(pcap(data_message(energy=[[1.0], [2.0]])))
    assert "field 'energy' has shape [2, 1], expected a flat list of numbers" in message


def test_error_ragged_nested_field():
    message = parse_error(pcap(data_message(energy=[[1.0], [2.0, 3.0]])))
    assert "field 'energy' is not a flat list of numbers" in message


def test_error_names_the_stream_type():
    message = parse_error(pcap(b"[]", typ="panda1"))
    assert message.startswith("panda1 frame 0:")

"""PandA position capture over TCP: framing the byte stream, parsing a session, malformed lines."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import zmq
from pydantic import ValidationError

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.positioncap.packets import (
    POSITIONCAP_TYPE,
    PositionCapEnd,
    PositionCapField,
    PositionCapPacketAdapter,
    PositionCapStart,
    PositionCapValues,
)
from dranspose.protocols.positioncap.parser import (
    CAPTURE_REQUEST,
    PositioncapParser,
    check_reply,
    message_kind,
    split_messages,
)
from tests.support.positioncap import END, HEADER, KEYS, LINES, OLD_HEADER, REPLY, SESSION


def pcap(*frames: object, typ: str = POSITIONCAP_TYPE) -> StreamData:
    return StreamData.model_construct(typ=typ, frames=list(frames))


def decode_line(line: bytes) -> list[float]:
    """A sample line decoded without dranspose: numbers separated by spaces."""
    return [float(word) for word in line.decode().split(" ") if word.strip()]


@pytest.fixture
def parser() -> PositioncapParser:
    return PositioncapParser()


@pytest.fixture
def armed(parser: PositioncapParser) -> PositioncapParser:
    parser.parse(pcap(HEADER))
    return parser


def parse_error(parser: PositioncapParser, *frames: object) -> str:
    with pytest.raises(ParseError) as info:
        parser.parse(pcap(*frames))
    assert isinstance(info.value, ValueError)
    return str(info.value)


# --- splitting the byte stream ------------------------------------------------------------------


def test_split_session_into_messages():
    messages, rest = split_messages(SESSION)
    assert messages == [REPLY, HEADER, *LINES, END]
    assert rest == b""


def test_split_keeps_incomplete_line():
    messages, rest = split_messages(HEADER + LINES[0] + LINES[1][:10])
    assert messages == [HEADER, LINES[0]]
    assert rest == LINES[1][:10]


def test_split_keeps_incomplete_header():
    cut = HEADER.index(b" INENC1.VAL double Min")
    messages, rest = split_messages(REPLY + HEADER[:cut])
    assert messages == [REPLY]
    assert rest == HEADER[:cut]


def test_split_header_without_its_empty_line_is_incomplete():
    messages, rest = split_messages(HEADER[:-1])
    assert messages == []
    assert rest == HEADER[:-1]


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_split_chunked_stream_gives_the_same_messages(chunk):
    messages: list[bytes] = []
    rest = b""
    for start in range(0, len(SESSION), chunk):
        more, rest = split_messages(rest + SESSION[start : start + chunk])
        messages.extend(more)
    assert messages == [REPLY, HEADER, *LINES, END]
    assert rest == b""


def test_split_drops_empty_lines_between_messages():
    messages, rest = split_messages(b"\n\nOK\n\n" + LINES[0] + b"\n" + END)
    assert messages == [REPLY, LINES[0], END]
    assert rest == b""


def test_split_two_acquisitions():
    second = HEADER.replace(b"10:12:03", b"10:13:40")
    stream = HEADER + LINES[0] + b"END 1 Disarmed\n" + second + LINES[1] + END
    messages, _ = split_messages(stream)
    assert messages == [HEADER, LINES[0], b"END 1 Disarmed\n", second, LINES[1], END]


def test_split_accepts_bytearray():
    messages, rest = split_messages(bytearray(LINES[0] + b" 1"))
    assert messages == [LINES[0]]
    assert type(messages[0]) is bytes
    assert rest == b" 1"


def test_message_kinds():
    kinds = [message_kind(m) for m in split_messages(SESSION)[0]]
    assert kinds == ["skip", "start", "event", "event", "event", "event", "end"]
    assert message_kind(OLD_HEADER) == "start"
    assert message_kind(b"ERR Unknown option FOO\n") == "skip"


def test_capture_request_and_reply():
    assert CAPTURE_REQUEST == b"ASCII SCALED\n"
    check_reply(REPLY)
    check_reply(b"OK\r\n")


def test_reply_err_is_an_error():
    with pytest.raises(ParseError, match="refused the capture options: 'ERR Unknown option'"):
        check_reply(b"ERR Unknown option\n")


def test_reply_other_is_an_error():
    with pytest.raises(ParseError, match="replied 'arm_time"):
        check_reply(b"arm_time: 2024-03-05T10:12:03Z\n")


# --- a whole session ----------------------------------------------------------------------------


def test_session_packet_types(parser):
    messages, _ = split_messages(SESSION)
    packets = [parser.parse(pcap(m)) for m in messages[1:]]
    assert [type(p) for p in packets] == [
        PositionCapStart,
        *[PositionCapValues] * 4,
        PositionCapEnd,
    ]


def test_header_times(parser):
    start = parser.parse(pcap(HEADER))
    assert isinstance(start, PositionCapStart)
    # nanoseconds are cut to Python's microseconds; the times are naive UTC (the "Z" dropped),
    # as the original dranspose gives them
    assert start.arm_time == datetime(2024, 3, 5, 10, 12, 3, 257841)
    assert start.start_time == datetime(2024, 3, 5, 10, 12, 3, 258875)
    assert start.arm_time.tzinfo is None and start.start_time.tzinfo is None
    assert start.hw_time_offset_ns == 100555
    assert parser.arm_time == start.arm_time


def test_header_settings(parser):
    start = parser.parse(pcap(HEADER))
    assert start.missed == 0
    assert start.process == "Scaled"
    assert start.format == "ASCII"
    assert start.sample_bytes is None


def test_header_fields(parser):
    start = parser.parse(pcap(HEADER))
    assert [f.key for f in start.fields] == KEYS
    # named "<field>.<capture>" as the original dranspose names them; .field is the bare field
    assert [f.name for f in start.fields] == KEYS
    assert [f.field for f in start.fields] == [
        "PCAP.TS_TRIG",
        "INENC1.VAL",
        "INENC1.VAL",
        "INENC1.VAL",
        "COUNTER1.OUT",
        "PCAP.BITS2",
    ]
    assert [f.capture for f in start.fields] == ["Value", "Mean", "Min", "Max", "Value", "Value"]
    assert [f.type for f in start.fields] == ["double"] * 5 + ["uint32"]
    assert parser.fields == start.fields
    assert all(f.value is None for f in start.fields)


def test_header_scaling(parser):
    fields = parser.parse(pcap(HEADER)).fields
    assert [f.scale for f in fields] == [8e-09, 0.0005, 0.0005, 0.0005, 1.0, None]
    assert [f.offset for f in fields] == [0.0, -12.5, -12.5, -12.5, 0.0, None]
    assert [f.units for f in fields] == ["s", "mm", "mm", "mm", "", None]


@pytest.mark.parametrize("index", range(4))
def test_values_are_typed_per_field(armed, index):
    packet = armed.parse(pcap(LINES[index]))
    expected = decode_line(LINES[index])
    assert isinstance(packet, PositionCapValues)
    assert list(packet.fields) == KEYS
    assert [packet.fields[k].value for k in KEYS] == expected
    assert [type(packet.fields[k].value) for k in KEYS] == [float] * 5 + [int]


def test_values_exact(armed):
    packet = armed.parse(pcap(LINES[1]))
    assert packet.fields["INENC1.VAL.Mean"].value == -3.24985
    assert packet.fields["PCAP.TS_TRIG.Value"].value == 0.011000048
    assert packet.fields["PCAP.BITS2.Value"].value == 33554433 == (1 << 25) + 1
    assert packet.as_dict() == dict(zip(KEYS, decode_line(LINES[1])))


def test_values_carry_their_field_description(armed):
    field = armed.parse(pcap(LINES[0])).fields["INENC1.VAL.Max"]
    assert (field.name, field.capture, field.type) == ("INENC1.VAL.Max", "Max", "double")
    assert field.field == "INENC1.VAL"
    assert (field.scale, field.offset, field.units) == (0.0005, -12.5, "mm")
    assert field.model_dump() == {
        "name": "INENC1.VAL.Max",
        "type": "double",
        "capture": "Max",
        "scale": 0.0005,
        "offset": -12.5,
        "units": "mm",
        "value": -3.7495,
    }


def test_values_do_not_touch_the_header_fields(armed):
    armed.parse(pcap(LINES[0]))
    assert all(f.value is None for f in armed.fields)


def test_session_mean_position(armed):
    packets = [armed.parse(pcap(line)) for line in LINES]
    mean = sum(p.fields["INENC1.VAL.Mean"].value for p in packets) / len(packets)
    expected = sum(decode_line(line)[1] for line in LINES) / len(LINES)
    assert mean == expected
    assert mean == pytest.approx(-2.9999625)


def test_end(armed):
    packet = armed.parse(pcap(END))
    assert isinstance(packet, PositionCapEnd)
    assert packet.samples == 4 == len(LINES)
    assert packet.status == "Ok"


def test_end_status_with_spaces(armed):
    packet = armed.parse(pcap(b"END 118 Early disconnect\n"))
    assert (packet.samples, packet.status) == (118, "Early disconnect")


def test_old_firmware_header_and_integer_values(parser):
    start = parser.parse(pcap(OLD_HEADER))
    assert start.arm_time == datetime(2023, 12, 19, 7, 51, 12, 754000)
    assert start.start_time is None
    assert start.hw_time_offset_ns is None
    assert (start.missed, start.process) == (3, "Unscaled")
    packet = parser.parse(pcap(b" 125000000 -2147483648 4294967295\n"))
    assert packet.as_dict() == {
        "PCAP.TS_TRIG.Value": 125000000,
        "INENC1.VAL.Value": -(2**31),
        "PCAP.BITS0.Value": 2**32 - 1,
    }
    assert all(type(v) is int for v in packet.as_dict().values())


def test_header_without_arm_time(parser):
    header = b"missed: 0\nprocess: Scaled\nformat: ASCII\nfields:\n X double Value\n\n"
    start = parser.parse(pcap(header))
    assert start.arm_time is None
    assert parser.arm_time is None
    assert parser.parse(pcap(b" 2.5\n")).fields["X.Value"].value == 2.5


def test_header_empty_hw_time_offset_is_unset(parser):
    header = HEADER.replace(b"hw_time_offset_ns: 100555\n", b"hw_time_offset_ns: \n")
    assert parser.parse(pcap(header)).hw_time_offset_ns is None


def test_header_unknown_keys_are_kept(parser):
    header = HEADER.replace(b"missed: 0\n", b"missed: 0\nlabel: scan 12\n")
    assert parser.parse(pcap(header)).label == "scan 12"


def test_header_with_crlf(parser):
    start = parser.parse(pcap(HEADER.replace(b"\n", b"\r\n")))
    assert [f.key for f in start.fields] == KEYS
    assert start.fields[0].units == "s"


def test_next_header_replaces_the_fields(armed):
    assert armed.parse(pcap(END)).samples == 4
    armed.parse(pcap(OLD_HEADER))
    assert [f.key for f in armed.fields] == [
        "PCAP.TS_TRIG.Value",
        "INENC1.VAL.Value",
        "PCAP.BITS0.Value",
    ]
    assert armed.arm_time == datetime(2023, 12, 19, 7, 51, 12, 754000)
    assert armed.parse(pcap(b" 8 -5 3\n")).as_dict()["INENC1.VAL.Value"] == -5


def test_end_keeps_the_fields(armed):
    armed.parse(pcap(END))
    assert armed.parse(pcap(LINES[0])).fields["COUNTER1.OUT.Value"].value == 1.0


def test_zmq_frame(armed):
    packet = armed.parse(pcap(zmq.Frame(LINES[2])))
    assert packet.fields["PCAP.BITS2.Value"].value == 301989889


def test_memoryview_frame(armed):
    assert armed.parse(pcap(memoryview(END))).samples == 4


def test_parsers_are_independent(armed):
    other = PositioncapParser()
    assert other.fields == []
    assert other.arm_time is None
    with pytest.raises(ParseError):
        other.parse(pcap(LINES[0]))


# --- building frames ----------------------------------------------------------------------------


def test_start_round_trip(parser):
    start = parser.parse(pcap(HEADER))
    stream = start.to_stream_data()
    assert stream.typ == POSITIONCAP_TYPE == "PCAP_RAW"
    assert PositioncapParser().parse(stream) == start


def test_start_writes_the_header_as_the_panda_does():
    start = PositioncapParser().parse(pcap(OLD_HEADER))
    assert start.to_stream_data().frames == [OLD_HEADER]


def test_start_scaled_field_lines():
    start = PositioncapParser().parse(pcap(HEADER))
    frame = start.to_stream_data().frames[0]
    fields_block = frame[frame.index(b"fields:\n") :]
    assert fields_block == HEADER[HEADER.index(b"fields:\n") :]


def test_values_round_trip(armed):
    packet = armed.parse(pcap(LINES[3]))
    again = armed.parse(packet.to_stream_data())
    assert again == packet
    assert decode_line(packet.to_stream_data().frames[0]) == decode_line(LINES[3])


def test_values_from_scratch():
    fields = {
        "X.Mean": PositionCapField(name="X.Mean", type="double", capture="Mean", value=0.25),
        "B.Value": PositionCapField(name="B.Value", type="uint32", value=5),
    }
    assert PositionCapValues(fields=fields).to_stream_data().frames == [b" 0.25 5\n"]


def test_values_without_value_cannot_be_written():
    field = PositionCapField(name="X.Mean", type="double", capture="Mean")
    with pytest.raises(ValueError, match="'X.Mean' has no value"):
        PositionCapValues(fields={"X.Mean": field}).to_stream_data()


def test_end_round_trip(parser):
    end = PositionCapEnd(samples=12, status="Disarmed")
    stream = end.to_stream_data(typ="PCAP")
    assert stream.frames == [b"END 12 Disarmed\n"]
    assert parser.parse(stream) == end


def test_start_from_scratch():
    start = PositionCapStart(
        arm_time=datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc),
        fields=[PositionCapField(name="INENC2.VAL.Value", type="double")],
    )
    assert start.to_stream_data().frames == [
        b"arm_time: 2024-01-02T03:04:05.678Z\nmissed: 0\nprocess: Scaled\nformat: ASCII\n"
        b"fields:\n INENC2.VAL double Value\n\n"
    ]
    # an aware time given by the caller is kept as the same instant, in UTC without a zone
    assert start.arm_time == datetime(2024, 1, 2, 3, 4, 5, 678000)


def test_adapter_validates_any_packet():
    end = PositionCapPacketAdapter.validate_python({"kind": "end", "samples": 3})
    assert end == PositionCapEnd(samples=3, status="Ok")
    start = PositionCapPacketAdapter.validate_python(
        {"kind": "start", "arm_time": "2024-03-05T10:12:03.257Z"}
    )
    assert isinstance(start, PositionCapStart)
    assert start.arm_time == datetime(2024, 3, 5, 10, 12, 3, 257000)
    with pytest.raises(ValidationError):
        PositionCapPacketAdapter.validate_python({"kind": "values", "fields": [1]})


# --- malformed ----------------------------------------------------------------------------------


def test_error_values_before_header(parser):
    message = parse_error(parser, LINES[0])
    assert message == (
        "PCAP_RAW sample line ' 0.001000048 -3.74975 -3.75 -3.7495 1 33554433\\n' before any "
        "header; expected the header block announcing the fields first"
    )


def test_error_too_few_values(armed):
    message = parse_error(armed, b" 0.001 -3.7 -3.75\n")
    assert message.startswith("PCAP_RAW sample line ' 0.001 -3.7 -3.75\\n': 3 values, expected 6")
    assert "PCAP.TS_TRIG.Value, INENC1.VAL.Mean" in message


def test_error_too_many_values(armed):
    message = parse_error(armed, LINES[0].rstrip(b"\n") + b" 7\n")
    assert "7 values, expected 6" in message


def test_error_value_not_a_number(armed):
    message = parse_error(armed, b" 0.001 -3.7 -3.75 x 1 33554433\n")
    assert message == (
        "PCAP_RAW sample line ' 0.001 -3.7 -3.75 x 1 33554433\\n': field 'INENC1.VAL.Max' "
        "value 'x' is not a double number"
    )


def test_error_value_not_a_number_chains(armed):
    with pytest.raises(ParseError) as info:
        armed.parse(pcap(b" 0.001 -3.7 -3.75 x 1 33554433\n"))
    assert isinstance(info.value.__cause__, ValueError)


def test_error_float_in_integer_field(armed):
    message = parse_error(armed, b" 0.001 -3.7 -3.75 -3.7 1 3.5\n")
    assert "field 'PCAP.BITS2.Value' value '3.5' is not a uint32 integer" in message


@pytest.mark.parametrize("bits", [b"-1", b"4294967296"])
def test_error_integer_out_of_range(armed, bits):
    message = parse_error(armed, b" 0.001 -3.7 -3.75 -3.7 1 " + bits + b"\n")
    assert "is out of the uint32 range [0, 4294967295]" in message


def test_error_blank_sample_line(armed):
    assert "0 values, expected 6" in parse_error(armed, b" \n")


@pytest.mark.parametrize("line", [b"END\n", b"END four Ok\n", b"END 4\n", b"ENDED 4 Ok\n"])
def test_error_malformed_end(armed, line):
    message = parse_error(armed, line)
    assert message.startswith(f"PCAP_RAW END line {line.decode()!r}")
    assert "expected 'END <samples> <status>'" in message


def test_error_unknown_field_type(parser):
    header = HEADER.replace(b"PCAP.BITS2 uint32", b"PCAP.BITS2 uint16")
    message = parse_error(parser, header)
    assert message == (
        "PCAP_RAW header field line ' PCAP.BITS2 uint16 Value': unknown type 'uint16'; "
        "expected one of 'uint32', 'int32', 'int64', 'double'"
    )


def test_error_malformed_field_line(parser):
    header = HEADER.replace(b" COUNTER1.OUT double Value scale: 1", b" COUNTER1.OUT double")
    message = parse_error(parser, header)
    assert "header field line ' COUNTER1.OUT double offset: 0 units: '" in message


def test_error_bad_scale(parser):
    message = parse_error(parser, HEADER.replace(b"scale: 8e-09", b"scale: tiny"))
    assert "scale and offset must be numbers" in message
    assert "PCAP.TS_TRIG double Value scale: tiny" in message


def test_error_header_without_fields_line(parser):
    message = parse_error(parser, b"arm_time: 2024-03-05T10:12:03Z\nmissed: 0\n\n")
    assert "no 'fields:' line" in message


def test_error_header_with_no_fields(parser):
    message = parse_error(parser, b"arm_time: 2024-03-05T10:12:03Z\nfields:\n\n")
    assert "'fields:' lists no captured fields" in message


def test_error_header_bad_line(parser):
    message = parse_error(parser, HEADER.replace(b"missed: 0\n", b"missed: 0\nwhat is this\n"))
    assert message == "PCAP_RAW header line 'what is this': expected 'key: value' or 'fields:'"


def test_error_header_bad_arm_time(parser):
    message = parse_error(parser, HEADER.replace(b"2024-03-05T10:12:03.257841574Z", b"yesterday"))
    assert message.startswith("PCAP_RAW header: arm_time: Input should be a valid datetime")
    assert "'yesterday'" in message


def test_error_header_bad_missed(parser):
    message = parse_error(parser, HEADER.replace(b"missed: 0", b"missed: some"))
    assert "missed: Input should be a valid integer" in message


def test_error_header_binary_format(parser):
    header = HEADER.replace(b"format: ASCII\n", b"format: Base64\nsample_bytes: 44\n")
    message = parse_error(parser, header)
    assert message == (
        "PCAP_RAW header: format 'Base64' is not supported, expected 'ASCII' "
        "(request 'ASCII SCALED')"
    )


def test_error_header_failure_keeps_previous_state(armed):
    parse_error(armed, HEADER.replace(b"format: ASCII", b"format: Framed"))
    assert [f.key for f in armed.fields] == KEYS
    assert armed.parse(pcap(LINES[0])).fields["COUNTER1.OUT.Value"].value == 1.0


def test_error_duplicate_field(parser):
    header = HEADER.replace(b" PCAP.BITS2 uint32 Value\n", b" PCAP.TS_TRIG double Value\n")
    assert "field 'PCAP.TS_TRIG.Value' is listed twice" in parse_error(parser, header)


def test_error_two_messages_in_one_frame(parser):
    message = parse_error(parser, HEADER + LINES[0])
    assert "line ' 0.001000048 -3.74975" in message
    assert "follows the empty line that ends the header" in message


def test_error_xml_header(parser):
    message = parse_error(parser, b'<header>\n<data missed="0" />\n</header>\n\n')
    assert "XML headers are not supported" in message


def test_error_reply_is_not_a_capture_message(parser):
    message = parse_error(parser, REPLY)
    assert message.startswith("PCAP_RAW line 'OK\\n' is the data port's reply")


def test_error_unknown_line(parser):
    message = parse_error(parser, b"BIN \x10\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08")
    assert message.startswith("PCAP_RAW line 'BIN")
    assert "expected a header block" in message


def test_error_header_not_utf8(parser):
    message = parse_error(parser, HEADER.replace(b"units: mm", b"units: \xb5m", 1))
    assert "header" in message and "not UTF-8" in message


def test_error_no_frames(parser):
    assert parse_error(parser).startswith("PCAP_RAW stream: 0 frames; expected exactly one")


def test_error_two_frames(parser):
    assert "2 frames" in parse_error(parser, HEADER, LINES[0])


def test_error_frame_not_bytes(parser):
    assert "got a int, expected bytes" in parse_error(parser, 12)


# --- the original dranspose's calls ---------------------------------------------------------------


def test_field_named_as_the_original_derives_its_capture():
    field = PositionCapField(name="INENC1.VAL.Mean", type="double")
    assert (field.name, field.field, field.capture) == ("INENC1.VAL.Mean", "INENC1.VAL", "Mean")
    assert field.header_line() == " INENC1.VAL double Mean\n"


def test_field_capture_must_agree_with_the_name():
    with pytest.raises(ValidationError, match=r"name 'INENC1.VAL' does not end with '.Mean'"):
        PositionCapField(name="INENC1.VAL", type="double", capture="Mean")


def test_field_without_capture_cannot_be_announced():
    field = PositionCapField(name="COUNTER", type="uint32")
    assert field.capture is None
    with pytest.raises(ValueError, match=r"'COUNTER' has no capture"):
        field.header_line()


def test_field_parse_types_the_text_as_the_original():
    assert PositionCapField(name="B.Value", type="uint32").parse("33554433").value == 33554433
    parsed = PositionCapField(name="X.Mean", type="double").parse("-3.25")
    assert (parsed.name, parsed.value, type(parsed.value)) == ("X.Mean", -3.25, float)
    with pytest.raises(ValueError, match=r"field 'B.Value' value '1.5' is not a uint32 integer"):
        PositionCapField(name="B.Value", type="uint32").parse("1.5")
    with pytest.raises(ValueError, match=r"field 'B.Value' value '-1' is out of the uint32 range"):
        PositionCapField(name="B.Value", type="uint32").parse("-1")
    with pytest.raises(ValueError, match=r"field 'S.Value' has unknown type 'string'"):
        PositionCapField(name="S.Value", type="string").parse("x")


def test_values_refuse_a_value_the_type_cannot_hold():
    field = PositionCapField(name="B.Value", type="uint32", value=1.5)
    with pytest.raises(ValueError, match=r"'B.Value' is uint32 but its value 1.5 is no integer"):
        PositionCapValues(fields={"B.Value": field}).to_stream_data()


def test_start_given_other_fields_than_it_holds():
    start = PositionCapStart(fields=[PositionCapField(name="A.Value", type="double")])
    with pytest.raises(ValueError, match=r"got fields \['B.Value'\] but this start already"):
        start.to_stream_data([PositionCapField(name="B.Value", type="double")])


def test_parse_takes_data_or_stream_data(parser):
    assert isinstance(parser.parse(data=pcap(HEADER)), PositionCapStart)
    assert isinstance(parser.parse(stream_data=pcap(LINES[0])), PositionCapValues)
    with pytest.raises(TypeError, match="got the StreamData twice"):
        parser.parse(pcap(END), stream_data=pcap(END))
    with pytest.raises(TypeError, match="missing the StreamData"):
        parser.parse()


def test_adapter_reads_the_originals_untagged_dumps():
    start = PositionCapPacketAdapter.validate_json(b'{"arm_time": "2024-03-05T10:12:03.257"}')
    assert start == PositionCapStart(arm_time=datetime(2024, 3, 5, 10, 12, 3, 257000))
    values = PositionCapPacketAdapter.validate_python(
        {"fields": {"A.Value": {"name": "A.Value", "type": "uint32", "value": 3}}}
    )
    assert isinstance(values, PositionCapValues) and values.fields["A.Value"].capture == "Value"
    # as the original's union reads it (its END packet dumps to {} too)
    assert PositionCapPacketAdapter.validate_python({}) == PositionCapValues()

"""Sardana packets: the bodies a Sardana HTTP recorder posts during a scan, and malformed ones."""

from __future__ import annotations

import json
import math

import pytest
import zmq
from pydantic import ValidationError

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.sardana.packets import (
    SARDANA_ENDPOINTS,
    SARDANA_TYPE,
    SardanaDataDescription,
    SardanaPacketAdapter,
    SardanaRecordData,
    SardanaRecordEnd,
)
from dranspose.protocols.sardana.parser import parse
from tests.support.sardana import DATA_DESC, RECORD_END, RECORD_END_TIMES, RECORDS, tagged


def sardana(*frames: object, typ: str = SARDANA_TYPE) -> StreamData:
    return StreamData.model_construct(typ=typ, frames=list(frames))


def parse_error(stream: StreamData) -> str:
    with pytest.raises(ParseError) as info:
        parse(stream)
    assert isinstance(info.value, ValueError)
    return str(info.value)


# --- data description ---------------------------------------------------------------------------


def test_data_description_scalars():
    packet = parse(sardana(DATA_DESC))
    assert isinstance(packet, SardanaDataDescription)
    assert packet.type == "DataDescription"
    assert packet.serialno == 1734
    assert packet.title == "ascan sam_x 0.0 1.0 2 0.1"
    assert packet.scandir == "/data/visitors/2024/p123"
    assert packet.estimatedtime == 3.352
    assert packet.total_scan_intervals == 2
    assert packet.starttime == "Tue Mar  5 10:12:01 2024"


def test_data_description_lists():
    packet = parse(sardana(DATA_DESC))
    raw = json.loads(DATA_DESC)
    assert packet.ref_moveables == ["sam_x"]
    assert packet.scanfile == ["scan_1734.h5", "scan_1734.dat"]
    assert packet.counters == raw["counters"]
    assert len(packet.counters) == 2


def test_data_description_columns():
    packet = parse(sardana(DATA_DESC))
    assert packet.column_names == ["point_nb", "sam_x", "ct01", "ipm_diode", "timestamp"]
    assert [c.label for c in packet.column_desc] == ["#Pt No", "sam_x", "ct01", "IPM diode", "dt"]
    assert packet.column("point_nb").dtype == "int64"
    assert packet.column("timestamp").shape == []


def test_data_description_motor_column_keeps_extras():
    motor = parse(sardana(DATA_DESC)).column("sam_x")
    assert motor.is_reference is True
    assert motor.min_value == 0.0
    assert motor.max_value == 1.0
    assert motor.model_extra == {
        "min_value": 0.0,
        "max_value": 1.0,
        "instrument": "",
        "is_reference": True,
    }


def test_data_description_unknown_column():
    with pytest.raises(KeyError, match="no column 'sam_y'"):
        parse(sardana(DATA_DESC)).column("sam_y")


def test_data_description_single_scanfile_becomes_a_list():
    body = json.dumps({**json.loads(DATA_DESC), "scanfile": "scan_1734.h5"}).encode()
    assert parse(sardana(body)).scanfile == ["scan_1734.h5"]


def test_data_description_unsaved_scan():
    body = json.dumps({**json.loads(DATA_DESC), "scanfile": None, "scandir": None}).encode()
    packet = parse(sardana(body))
    assert packet.scandir is None
    assert packet.scanfile == []


def test_data_description_tagged():
    packet = parse(sardana(tagged(DATA_DESC, "DataDescription")))
    assert isinstance(packet, SardanaDataDescription)
    assert packet.serialno == 1734


def test_data_description_unknown_fields_are_kept():
    body = json.dumps({**json.loads(DATA_DESC), "macro_id": "a1b2-c3"}).encode()
    assert parse(sardana(body)).macro_id == "a1b2-c3"


# --- records ------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(3))
def test_record_point_and_timestamp(index):
    packet = parse(sardana(RECORDS[index]))
    raw = json.loads(RECORDS[index])
    assert isinstance(packet, SardanaRecordData)
    assert packet.type == "RecordData"
    assert packet.point_nb == index
    assert packet.timestamp == raw["timestamp"]


def test_record_columns_by_name():
    packet = parse(sardana(RECORDS[1]))
    assert packet.sam_x == 0.5
    assert packet.ct01 == 0.1
    assert packet.columns == {
        "point_nb": 1,
        "sam_x": 0.5,
        "ct01": 0.1,
        "ipm_diode": 1.198e-06,
        "timestamp": 1.5334928035736084,
    }


def test_record_nan_reading():
    packet = parse(sardana(RECORDS[2]))
    assert math.isnan(packet.ipm_diode)


def test_record_null_reading():
    packet = parse(sardana(b'{"point_nb": 4, "sam_x": null, "timestamp": 5.0}'))
    assert packet.sam_x is None
    assert packet.columns == {"point_nb": 4, "sam_x": None, "timestamp": 5.0}


def test_record_without_timestamp():
    packet = parse(sardana(b'{"point_nb": 7, "sam_x": 1.5}'))
    assert packet.timestamp is None
    assert packet.columns == {"point_nb": 7, "sam_x": 1.5}


def test_record_tagged():
    packet = parse(sardana(tagged(RECORDS[0], "RecordData")))
    assert isinstance(packet, SardanaRecordData)
    assert packet.ipm_diode == 1.204e-06


# --- end ----------------------------------------------------------------------------------------


def test_record_end_empty_body():
    packet = parse(sardana(RECORD_END))
    assert isinstance(packet, SardanaRecordEnd)
    assert packet.type == "RecordEnd"
    assert packet.model_extra == {}


def test_record_end_with_times():
    packet = parse(sardana(RECORD_END_TIMES))
    assert isinstance(packet, SardanaRecordEnd)
    assert packet.endtime == "Tue Mar  5 10:12:05 2024"
    assert packet.deadtime == 0.271


def test_record_end_tagged():
    assert isinstance(parse(sardana(b'{"type": "RecordEnd"}')), SardanaRecordEnd)


# --- a whole scan, as a payload reads it ----------------------------------------------------------


def test_whole_scan_in_order():
    bodies = [DATA_DESC, *RECORDS, RECORD_END]
    packets = [parse(sardana(body)) for body in bodies]
    assert [type(p).__name__ for p in packets] == [
        "SardanaDataDescription",
        "SardanaRecordData",
        "SardanaRecordData",
        "SardanaRecordData",
        "SardanaRecordEnd",
    ]
    motor = packets[0].ref_moveables[0]
    positions = [getattr(p, motor) for p in packets[1:-1]]
    assert positions == [json.loads(body)["sam_x"] for body in RECORDS] == [0.0, 0.5, 1.0]


# --- frame types --------------------------------------------------------------------------------


def test_zmq_frame():
    packet = parse(sardana(zmq.Frame(RECORDS[0])))
    assert packet.point_nb == 0


def test_memoryview_frame():
    packet = parse(sardana(memoryview(DATA_DESC)))
    assert packet.serialno == 1734


def test_other_stream_types_are_accepted():
    assert parse(sardana(RECORDS[0], typ="scan")).point_nb == 0


# --- Sardana's JSON recorder envelope -------------------------------------------------------------


def test_recorder_envelope_record():
    body = b'{"type": "record_data", "macro_id": "f3c2-77", "data": ' + RECORDS[1] + b"}"
    packet = parse(sardana(body))
    assert isinstance(packet, SardanaRecordData)
    assert packet.point_nb == 1
    assert packet.sam_x == 0.5
    assert packet.macro_id == "f3c2-77"


def test_recorder_envelope_description_and_end():
    desc = parse(sardana(b'{"type": "data_desc", "data": ' + DATA_DESC + b"}"))
    end = parse(sardana(b'{"type": "record_end", "data": ' + RECORD_END_TIMES + b"}"))
    assert isinstance(desc, SardanaDataDescription)
    assert desc.serialno == 1734
    assert isinstance(end, SardanaRecordEnd)
    assert end.deadtime == 0.271


def test_endpoints_name_the_packet_types():
    assert SARDANA_ENDPOINTS == {
        "data_desc": "DataDescription",
        "record_data": "RecordData",
        "record_end": "RecordEnd",
    }


# --- building frames ----------------------------------------------------------------------------


def test_description_round_trip():
    packet = parse(sardana(DATA_DESC))
    stream = packet.to_stream_data()
    assert stream.typ == SARDANA_TYPE == "sardana"
    assert len(stream.frames) == 1
    assert json.loads(stream.frames[0])["type"] == "DataDescription"
    again = parse(stream)
    assert again == packet
    assert again.column("sam_x").is_reference is True


def test_record_round_trip():
    packet = SardanaRecordData(point_nb=3, timestamp=0.25, sam_x=1.5, ct01=0.1)
    frame = packet.to_stream_data().frames[0]
    assert json.loads(frame) == {
        "type": "RecordData",
        "point_nb": 3,
        "timestamp": 0.25,
        "sam_x": 1.5,
        "ct01": 0.1,
    }
    assert parse(sardana(frame)) == packet


def test_end_round_trip():
    packet = SardanaRecordEnd()
    frame = packet.to_stream_data(typ="scan").frames[0]
    assert json.loads(frame) == {"type": "RecordEnd"}
    assert parse(sardana(frame)) == packet


def test_adapter_validates_tagged_mappings():
    packet = SardanaPacketAdapter.validate_python({"type": "RecordData", "point_nb": 2})
    assert isinstance(packet, SardanaRecordData)
    end = SardanaPacketAdapter.validate_json(b'{"type": "RecordEnd"}')
    assert isinstance(end, SardanaRecordEnd)
    with pytest.raises(ValidationError):
        SardanaPacketAdapter.validate_python({"point_nb": 2})


# --- malformed ----------------------------------------------------------------------------------


def test_error_no_frames():
    message = parse_error(sardana())
    assert message.startswith("sardana stream: 0 frames; expected exactly one frame")


def test_error_two_frames():
    message = parse_error(sardana(RECORD_END, RECORD_END))
    assert "2 frames" in message


def test_error_not_json():
    message = parse_error(sardana(b'{"point_nb": 1, "sam_x": '))
    assert message.startswith("sardana frame 0 (JSON body): not valid JSON")


def test_error_not_json_chains_the_decoder_error():
    with pytest.raises(ParseError) as info:
        parse(sardana(b"\xff\xfe"))
    assert isinstance(info.value.__cause__, ValueError)


def test_error_not_an_object():
    message = parse_error(sardana(b"[0, 0.5, 0.1]"))
    assert "got a JSON array, expected a JSON object" in message


def test_error_frame_not_bytes():
    message = parse_error(sardana(1734))
    assert "got a int, expected bytes" in message


def test_error_unknown_type():
    message = parse_error(sardana(b'{"type": "RecordStart", "point_nb": 0}'))
    assert "type 'RecordStart'; expected 'DataDescription', 'RecordData' or 'RecordEnd'" in message


def test_error_custom_data_is_no_record():
    message = parse_error(sardana(b'{"type": "custom_data", "data": {"name": "x", "value": 1}}'))
    assert "type 'custom_data'" in message


def test_error_envelope_without_data():
    message = parse_error(sardana(b'{"type": "record_data", "macro_id": "f3c2-77"}'))
    assert "recorder packet of type 'record_data' has no data" in message


def test_error_untagged_unknown_body():
    message = parse_error(sardana(b'{"sam_x": 0.5, "ct01": 0.1}'))
    assert "untagged body with keys 'sam_x', 'ct01' is no Sardana record" in message


def test_error_description_missing_serialno():
    body = json.loads(DATA_DESC)
    del body["serialno"]
    message = parse_error(sardana(json.dumps(body).encode()))
    assert message == ("sardana frame 0 (JSON body): invalid DataDescription: serialno is missing")


def test_error_description_bad_serialno():
    body = json.dumps({**json.loads(DATA_DESC), "serialno": "latest"}).encode()
    message = parse_error(sardana(body))
    assert "invalid DataDescription: serialno: Input should be a valid integer" in message
    assert "'latest'" in message


def test_error_description_bad_column():
    body = json.dumps({**json.loads(DATA_DESC), "column_desc": [{"label": "dt"}]}).encode()
    message = parse_error(sardana(body))
    assert "column_desc[0].name is missing" in message


def test_error_description_bad_ref_moveables():
    body = json.dumps({**json.loads(DATA_DESC), "ref_moveables": "sam_x"}).encode()
    message = parse_error(sardana(body))
    assert "ref_moveables: Input should be a valid list" in message


def test_error_record_bad_point_nb():
    message = parse_error(sardana(b'{"point_nb": "first", "timestamp": 0.1}'))
    assert "invalid RecordData: point_nb: Input should be a valid integer" in message


def test_error_record_missing_point_nb_and_timestamp():
    # the original dranspose required only timestamp (point_nb was an extra), we point_nb;
    # a record needs one of them
    message = parse_error(sardana(b'{"type": "RecordData", "sam_x": 0.1}'))
    assert message.endswith(
        "invalid RecordData: a record needs point_nb or timestamp; it has neither"
    )


def test_record_with_timestamp_but_no_point_nb():
    packet = parse(sardana(b'{"type": "RecordData", "timestamp": 0.1}'))
    assert (packet.point_nb, packet.timestamp) == (None, 0.1)
    assert packet.columns == {"timestamp": 0.1}


def test_error_chains_the_validation_error():
    with pytest.raises(ParseError) as info:
        parse(sardana(b'{"type": "RecordData"}'))
    assert isinstance(info.value.__cause__, ValidationError)


def test_untagged_bodies_the_original_told_apart():
    # the original validated untagged bodies against its models: serialno/timestamp suffice
    description = parse(sardana(b'{"serialno": 3, "scandir": "/d", "title": "t"}'))
    assert (type(description).__name__, description.column_desc) == ("SardanaDataDescription", [])
    record = parse(data=sardana(b'{"timestamp": 0.5, "x": 1.0}'))
    assert (type(record).__name__, record.timestamp, record.x) == ("SardanaRecordData", 0.5, 1.0)

"""Calls of the original's event and parameter API that payloads and tools make, by behaviour.

The surface walk (tests/test_api_surface.py) checks that the calls are accepted; these check
what they do, against values worked out here: the original's static ``from_bytes``/``to_bytes``
called on the class, the ``Parameter``/``ParameterList`` adapters, ``StreamData.get_bytes``,
``InternalWorkerMessage.get_all_frames`` and a ``datetime`` ``created_at``,
``EventData.from_internals(msgs=...)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import zmq

from dranspose.event import EventData, InternalWorkerMessage, StreamData
from dranspose.parameters import (
    BinaryParameter,
    BoolParameter,
    FloatParameter,
    IntParameter,
    Parameter,
    ParameterBase,
    ParameterList,
    ParameterValueError,
    StrParameter,
)


@pytest.mark.parametrize(
    "cls, raw, value",
    [
        (IntParameter, b"42", 42),
        (FloatParameter, b"0.25", 0.25),
        (StrParameter, "é".encode(), "é"),
        (BoolParameter, b"True", True),
        (BoolParameter, b"False", False),
        (BinaryParameter, b"\x00\xff", b"\x00\xff"),
    ],
)
def test_from_bytes_on_the_class_as_the_original_called_it(cls, raw, value):
    assert cls.from_bytes(raw) == value
    assert cls.from_bytes(by=raw) == value
    # an instance parses the same way
    assert cls(name="p").from_bytes(raw) == value


def test_to_bytes_on_the_class_writes_what_the_original_wrote():
    # the original's to_bytes was str(val).encode(), binary passed through
    assert ParameterBase.to_bytes(5) == b"5"
    assert IntParameter.to_bytes(val=-3) == b"-3"
    assert BoolParameter.to_bytes(True) == b"True"
    assert StrParameter.to_bytes("x y") == b"x y"
    assert BinaryParameter.to_bytes(b"\x01") == b"\x01"
    for cls, value in [(IntParameter, 7), (BoolParameter, False), (FloatParameter, 1.5)]:
        assert cls.from_bytes(cls.to_bytes(value)) == value


def test_a_bad_value_on_the_class_is_refused_not_coerced():
    # the original returned 0 here; ours says what is wrong
    with pytest.raises(ParameterValueError, match=r"IntParameter: value b'abc' is not a valid int"):
        IntParameter.from_bytes(b"abc")
    with pytest.raises(ParameterValueError, match=r"parameter 'till_x'"):
        IntParameter(name="till_x").from_bytes(b"abc")


def test_the_declaration_adapters():
    declared = ParameterList.validate_json(
        b'[{"name": "roi", "dtype": "int", "default": 3}, {"name": "on", "dtype": "bool"}]'
    )
    assert [type(d) for d in declared] == [IntParameter, BoolParameter]
    assert declared[0].default == 3 and declared[1].default is False
    one = Parameter.validate_python({"name": "scale", "dtype": "float", "default": 0.5})
    assert isinstance(one, FloatParameter) and one.default == 0.5
    assert ParameterBase(name="raw").from_bytes(b"\x00") == b"\x00"


def test_stream_data_get_bytes_detaches_zmq_frames():
    data = StreamData(typ="STINS", frames=[zmq.Frame(b"header"), b"pixels"])
    copy = data.get_bytes()
    assert copy.frames == [b"header", b"pixels"]
    assert all(type(f) is bytes for f in copy.frames) and copy.typ == "STINS"
    assert copy.length == 2


def test_internal_message_frames_and_a_datetime_created_at():
    when = datetime(2024, 5, 17, 9, 30, 12, 500000, tzinfo=timezone(timedelta(hours=2)))
    msg = InternalWorkerMessage(
        event_number=4,
        streams={
            "a": StreamData(typ="t", frames=[b"1", b"2"]),
            "b": StreamData(typ="t", frames=[b"3"]),
        },
        created_at=when,
    )
    assert msg.get_all_frames() == [b"1", b"2", b"3"]
    assert msg.created_at == when.timestamp()
    naive = InternalWorkerMessage(event_number=1, created_at=datetime(1970, 1, 1, 0, 1))
    assert naive.created_at == 60.0  # a naive time is UTC, as the original wrote them


def test_from_internals_takes_msgs_by_keyword():
    parts = [
        InternalWorkerMessage(event_number=9, streams={"a": StreamData(typ="t", frames=[b"1"])}),
        InternalWorkerMessage(event_number=9, streams={"b": StreamData(typ="t", frames=[b"2"])}),
    ]
    event = EventData.from_internals(msgs=parts)
    assert event.event_number == 9 and sorted(event.streams) == ["a", "b"]
    assert event.streams["b"].frames == [b"2"]

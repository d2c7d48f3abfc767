"""core/construct.trusted builds the same objects as model_construct on every hot path that uses it."""

from __future__ import annotations

import copy
import pickle

import pytest
import zmq

from dranspose.core.construct import trusted
from dranspose.core.coordination import AssignedEvent
from dranspose.core.event import EventData, InternalWorkerMessage, ResultData, StreamData
from dranspose.core.protocol import EventNumber, StreamName, WorkerName

CASES = [
    (StreamData, {"typ": "STINS", "frames": [b'{"htype": "image"}', b"\x00" * 8]}),
    (
        EventData,
        {
            "event_number": EventNumber(3),
            "streams": {StreamName("x"): StreamData(typ="STINS", frames=[b"a"])},
        },
    ),
    (
        InternalWorkerMessage,
        {
            "event_number": EventNumber(2),
            "streams": {StreamName("x"): StreamData(typ="STINS", frames=[b"a"])},
            "created_at": 1.5,
        },
    ),
    (
        ResultData,
        {
            "event_number": EventNumber(4),
            "worker": WorkerName("w0"),
            "parameters_hash": "abc",
            "payload": {"sum": 1.5},
            "redelivered": False,
        },
    ),
    (
        AssignedEvent,
        {"event_number": EventNumber(5), "streams": {"x": ["w0", "w1"]}, "redelivered": True},
    ),
]


@pytest.mark.parametrize(("cls", "values"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_trusted_equals_model_construct(cls: type, values: dict) -> None:
    fast = trusted(cls, dict(values))
    slow = cls.model_construct(**values)
    assert type(fast) is cls
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_fields_set == slow.model_fields_set
    assert pickle.loads(pickle.dumps(fast)) == slow
    assert copy.deepcopy(fast) == slow
    # every field is an attribute, as model_construct leaves it
    for name in cls.model_fields:
        assert getattr(fast, name) == getattr(slow, name)


def test_trusted_objects_are_independent() -> None:
    a = trusted(StreamData, {"typ": "STINS", "frames": [b"a"]})
    b = trusted(StreamData, {"typ": "STINS", "frames": [b"b"]})
    a.typ = "other"
    assert b.typ == "STINS"
    assert a.model_fields_set is not b.model_fields_set


def test_stream_data_of_a_zmq_frame_keeps_the_frame() -> None:
    frame = zmq.Frame(b"\x01" * 100_000)
    data = trusted(StreamData, {"typ": "STINS", "frames": [frame]})
    assert data.frames[0] is frame
    assert data.length == 1

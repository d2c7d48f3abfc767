"""Contrast scan-controller packets: the shipped capture, building frames, malformed messages."""

from __future__ import annotations

import collections
import pickle
from typing import Any

import numpy as np
import pytest
import zmq

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.contrast.packets import (
    CONTRAST_TYPE,
    ContrastFinished,
    ContrastHeartbeat,
    ContrastPacket,
    ContrastRunning,
    ContrastStarted,
)
from dranspose.protocols.contrast.parser import parse
from tests.support.pickles import raw_items, reference_loads

CAPTURE = "contrast-dump.cbors"
STATUSES = (
    ["heartbeat", "started"]
    + ["running"] * 11
    + ["heartbeat"]
    + ["running"] * 9
    + [
        "finished",
        "heartbeat",
        "heartbeat",
    ]
)
# "mesh sx -2 2 3 sy -2 2 4": sx takes 4 positions, and for each of them sy takes 5
GRID = [(sx, sy) for sx in np.linspace(-2, 2, 4) for sy in np.linspace(-2, 2, 5)]


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    items = raw_items(CAPTURE)
    assert all(len(item) == 1 for item in items)
    return [item[0] for item in items]


@pytest.fixture(scope="module")
def reference(frames) -> list[Any]:
    """Every message decoded independently of dranspose."""
    return [reference_loads(frame) for frame in frames]


@pytest.fixture(scope="module")
def packets(frames) -> list[Any]:
    return [parse(StreamData(typ=CONTRAST_TYPE, frames=[frame])) for frame in frames]


def contrast(*frames: Any) -> StreamData:
    return StreamData.model_construct(typ=CONTRAST_TYPE, frames=list(frames))


def pickled(message: Any, protocol: int = 2) -> StreamData:
    return contrast(pickle.dumps(message, protocol=protocol))


# --- the shipped capture -------------------------------------------------------------------------


def test_capture_has_26_messages(frames):
    assert len(frames) == 26


def test_capture_statuses_in_order(packets, reference):
    assert [message["status"] for message in reference] == STATUSES
    assert [packet.status for packet in packets] == STATUSES


def test_capture_counts_per_status(packets):
    counts = collections.Counter(type(packet).__name__ for packet in packets)
    assert counts == {
        "ContrastHeartbeat": 4,
        "ContrastStarted": 1,
        "ContrastRunning": 20,
        "ContrastFinished": 1,
    }


def test_capture_started(packets, reference):
    packet = packets[1]
    assert isinstance(packet, ContrastStarted)
    assert packet.scannr == 2
    assert packet.description == "mesh sx -2 2 3 sy -2 2 4 0.1"
    assert packet.path == "/data/staff/nanomax/commissioning_2023-2/diff_1130_stream_test/raw/dummy"
    assert packet.snapshot == reference[1]["snapshot"]
    assert packet.snapshot["sx"] == 1.9986190804920625
    assert len(packet.snapshot) == 92


def test_capture_finished_repeats_the_scan(packets, reference):
    packet = packets[23]
    assert isinstance(packet, ContrastFinished)
    assert (packet.scannr, packet.path, packet.description) == (
        reference[1]["scannr"],
        reference[1]["path"],
        reference[1]["description"],
    )


def test_capture_running_records_match_the_reference(packets, reference):
    running = [(p, r) for p, r in zip(packets, reference) if r["status"] == "running"]
    assert len(running) == 20
    for packet, message in running:
        assert isinstance(packet, ContrastRunning)
        assert packet.dt == message["dt"]
        assert packet.sx == message["sx"]
        assert packet.sy == message["sy"]
        assert sorted(packet.model_extra) == ["panda0", "pseudo", "sx", "sy", "xspress3"]
        assert packet.xspress3 == message["xspress3"]
        for group in ("pseudo", "panda0"):
            assert list(getattr(packet, group)) == list(message[group])
            for key, value in message[group].items():
                got = getattr(packet, group)[key]
                assert type(got) is np.ndarray
                assert got.dtype == value.dtype == np.float64
                assert got.shape == value.shape == (1,)
                assert got[0] == value[0]


def test_capture_running_positions_follow_the_mesh(packets):
    positions = [(p.sx, p.sy) for p in packets if isinstance(p, ContrastRunning)]
    assert len(positions) == len(GRID)
    for (sx, sy), (nominal_x, nominal_y) in zip(positions, GRID):
        assert sx == pytest.approx(nominal_x, abs=0.01)
        assert sy == pytest.approx(nominal_y, abs=0.01)


def test_capture_first_point_values(packets):
    packet = packets[2]
    assert packet.dt == 2.410903215408325
    assert packet.sx == -2.000431059888797
    assert packet.sy == -2.0011940002441406
    assert packet.pseudo["x"][0] == packet.panda0["INENC2.VAL_Mean"][0]
    assert packet.pseudo["x"][0] == pytest.approx(-2.00405186)
    assert packet.xspress3["filename"].endswith("scan_000002_xspress3.hdf5")


def test_capture_times_increase(packets):
    times = [p.dt for p in packets if isinstance(p, ContrastRunning)]
    assert times == sorted(times)


def test_zmq_frame_input(frames):
    packet = parse(contrast(zmq.Frame(frames[2])))
    assert isinstance(packet, ContrastRunning)
    assert packet.sx == -2.000431059888797


def test_any_typ_is_accepted(frames):
    packet = parse(StreamData(typ="something-else", frames=[frames[0]]))
    assert isinstance(packet, ContrastHeartbeat)


def test_adapter_validates_unpickled_dicts(reference):
    assert isinstance(ContrastPacket.validate_python(reference[2]), ContrastRunning)
    assert isinstance(ContrastPacket.validate_python(reference[0]), ContrastHeartbeat)


# --- building frames -----------------------------------------------------------------------------


def test_round_trip_started():
    packet = ContrastStarted(
        status="started", path="/data/x", scannr=7, description="ascan x 0 1 5", snapshot={"x": 1.0}
    )
    frames = packet.to_stream_data().frames
    assert len(frames) == 1
    assert pickle.loads(frames[0]) == {
        "status": "started",
        "path": "/data/x",
        "scannr": 7,
        "description": "ascan x 0 1 5",
        "snapshot": {"x": 1.0},
    }
    assert parse(packet.to_stream_data()) == packet


def test_round_trip_running_with_arrays():
    packet = ContrastRunning(status="running", dt=0.5, x=1.25, pseudo={"x": np.array([1.5])})
    parsed = parse(packet.to_stream_data())
    assert isinstance(parsed, ContrastRunning)
    assert parsed.dt == 0.5
    assert parsed.x == 1.25
    np.testing.assert_array_equal(parsed.pseudo["x"], [1.5])


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_round_trip_every_protocol(protocol):
    packet = ContrastFinished(status="finished", path="p", scannr=1, description="d")
    parsed = parse(packet.to_stream_data(protocol=protocol))
    assert parsed == packet


def test_stream_data_typ():
    data = ContrastHeartbeat(status="heartbeat").to_stream_data()
    assert data.typ == CONTRAST_TYPE == "contrast"


# --- malformed messages --------------------------------------------------------------------------


def test_no_frames():
    with pytest.raises(ParseError, match="contrast message has 0 frames; expected exactly one"):
        parse(contrast())


def test_two_frames(frames):
    with pytest.raises(ParseError, match="contrast message has 2 frames"):
        parse(contrast(frames[0], frames[0]))


def test_not_a_dict():
    with pytest.raises(ParseError, match="contrast frame 0: unpickled a list, expected a dict"):
        parse(pickled(["status", "running"]))


def test_no_status():
    with pytest.raises(ParseError, match="contrast frame 0: no 'status' key; expected status"):
        parse(pickled({"dt": 1.0}))


def test_unknown_status():
    with pytest.raises(ParseError, match="status 'paused'; expected status to be one of"):
        parse(pickled({"status": "paused"}))


def test_status_not_a_string():
    with pytest.raises(ParseError, match="status 3; expected status"):
        parse(pickled({"status": 3}))


def test_started_without_scannr():
    message = {"status": "started", "path": "/p", "description": "d"}
    with pytest.raises(ParseError, match="invalid 'started' message: scannr is missing"):
        parse(pickled(message))


def test_running_with_bad_dt():
    with pytest.raises(ParseError, match=r"invalid 'running' message: dt: .*got 'soon'") as info:
        parse(pickled({"status": "running", "dt": "soon"}))
    assert info.value.__cause__ is not None


def test_non_string_key():
    with pytest.raises(ParseError, match="has a key 5 that is not a str"):
        parse(pickled({"status": "heartbeat", 5: "x"}))


def test_refused_global_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    data = f"cos\nsystem\n(Vtouch {marker}\ntR.".encode()
    with pytest.raises(ParseError, match=r"contrast frame 0: refused pickle global 'os\.system'"):
        parse(contrast(data))
    assert not marker.exists()


def test_truncated_capture_message(frames):
    with pytest.raises(ParseError, match="contrast frame 0: pickle is truncated"):
        parse(contrast(frames[2][:-10]))


def test_not_a_pickle():
    with pytest.raises(ParseError, match="contrast frame 0"):
        parse(contrast(b'{"status": "running"}'))


def test_frame_of_wrong_type():
    with pytest.raises(ParseError, match="contrast frame 0: got a int"):
        parse(contrast(5))

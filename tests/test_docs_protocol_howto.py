"""The example of docs/howto-protocol-parser.md (examples/protocol_parser/thermo.py) works.

Parsing, refusing malformed messages with clear errors, the ingester's classification, and the
offline path the how-to describes: a raw capture numbered with the protocol's rules, written as
an ingester dump and replayed through a payload that uses the parser.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from dranspose.core.event import InternalWorkerMessage, StreamData
from dranspose.io.capture import CaptureWriter, RawCaptureWriter, read_raw_capture
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.registry import PROTOCOLS, Kind, get_protocol, number_series
from dranspose.tools.replay import run_replay

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "protocol_parser" / "thermo.py"


def load_example():
    spec = importlib.util.spec_from_file_location("thermo_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


thermo = load_example()

RUN = [
    {"kind": "start", "run": 7, "sensors": ["cold head", "sample"]},
    {"kind": "reading", "index": 0, "celsius": [-180.25, 21.5]},
    {"kind": "reading", "index": 1, "celsius": [-180.5, 22.0]},
    {"kind": "reading", "index": 2, "celsius": [-181.0, 22.75]},
    {"kind": "stop", "readings": 3},
]


def frames(message: dict) -> list[bytes]:
    return [json.dumps(message).encode()]


def stream(raw: list[bytes]) -> StreamData:
    return StreamData(typ=thermo.THERMO_TYPE, frames=raw)


@pytest.mark.parametrize("message", RUN, ids=[m["kind"] for m in RUN])
def test_each_kind_parses_to_its_packet_with_the_sent_values(message):
    packet = thermo.parse(stream(frames(message)))
    expected = {
        "start": thermo.ThermoStart,
        "reading": thermo.ThermoReading,
        "stop": thermo.ThermoStop,
    }[message["kind"]]
    assert type(packet) is expected
    assert packet.model_dump() == message


def test_unknown_fields_are_kept():
    packet = thermo.parse(stream(frames({**RUN[1], "heater": "on"})))
    assert packet.model_extra == {"heater": "on"}


@pytest.mark.parametrize(
    "raw, fragments",
    [
        ([b'{"kind": "pause"}'], ["THERMO frame 0", "'pause'", "'start', 'reading', 'stop'"]),
        (
            [b'{"kind": "reading", "index": 0, "celsius": ["warm"]}'],
            ["reading.celsius.0", "valid number"],
        ),
        ([b'{"kind": "reading", "index": 0, "celsius": [-300]}'], ["below absolute zero"]),
        ([b"not json"], ["THERMO frame 0", "Invalid JSON"]),
        ([b"{}", b"{}"], ["2 frames", "exactly one"]),
    ],
    ids=["unknown-kind", "not-a-number", "below-absolute-zero", "not-json", "two-frames"],
)
def test_malformed_messages_are_refused_with_a_reason(raw, fragments):
    with pytest.raises(ParseError) as info:
        thermo.parse(stream(raw))
    for fragment in fragments:
        assert fragment in str(info.value)


def test_the_ingester_classifies_start_readings_and_stop():
    kinds = [thermo.PROTOCOL.classify(frames(m)) for m in RUN]
    assert kinds == [Kind.START, Kind.EVENT, Kind.EVENT, Kind.EVENT, Kind.END]


def test_registering_makes_the_protocol_known_by_name(monkeypatch):
    monkeypatch.setitem(PROTOCOLS, "thermo", thermo.PROTOCOL)
    assert get_protocol("thermo") is thermo.PROTOCOL


class MeanWorker:
    """The how-to's payload: mean temperature per sensor and reading."""

    def process_event(self, event):
        packet = thermo.parse(event.streams["thermo"])
        if isinstance(packet, thermo.ThermoReading):
            return {"index": packet.index, "celsius": packet.celsius}
        return None


class CollectingReducer:
    def __init__(self):
        self.readings = {}

    def process_result(self, result):
        self.readings[result.event_number] = result.payload

    def finish(self):
        Path("readings.json").write_text(json.dumps(self.readings))


def test_a_raw_capture_replays_through_the_parser(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    chatter = {"kind": "stop", "readings": 0}  # the end of an earlier run, before ours starts
    with RawCaptureWriter("raw.cbors") as out:
        for message in [chatter, *RUN]:
            out.write(frames(message))
    with CaptureWriter("dump.cbors") as out:
        for number, raw in number_series(thermo.PROTOCOL, read_raw_capture("raw.cbors")):
            out.write(
                InternalWorkerMessage(
                    event_number=number,
                    streams={"thermo": StreamData(typ=thermo.THERMO_TYPE, frames=list(raw))},
                )
            )
    summary = run_replay(
        MeanWorker, CollectingReducer, zmq_files=["dump.cbors"], show_progress=False
    )
    assert summary.ok, summary.describe()
    readings = json.loads(Path("readings.json").read_text())
    # the start is event 0, the readings events 1..3, the stop event 4
    assert readings == {
        str(n + 1): {"index": m["index"], "celsius": m["celsius"]} for n, m in enumerate(RUN[1:4])
    }

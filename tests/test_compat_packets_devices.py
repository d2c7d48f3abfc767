"""Round trips with the original dranspose 0.2.0 for lecroy, pcap, positioncap, sardana, albaem.

``tests/data/original_packets/<protocol>.json`` (written by ``record_devices.py`` there, run with
the original's interpreter) holds, per protocol:

* (a) messages built as the original's sources, ingesters and tests build them, with the
  original's parse of each: our parser must read the same values from the same frames;
* (b) the frames our constructors build (``tests/support/original_devices.py``) with the
  original's parse of them: we must still build exactly those frames (else the recorded verdict
  no longer applies: re-run the recorder), and the original must have read our values.

Values compare with :func:`~tests.support.original_devices.covers`: every field the original
has must hold the same value in ours; fields we add are not compared.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from dranspose.core.event import StreamData
from dranspose.middlewares import albaem, lecroy, pcap, sardana
from dranspose.middlewares.positioncap import PositioncapParser, PositionCapValues
from tests.support.original_devices import PROTOCOLS, covers, normal, our_cases
from tests.support.positioncap import END, HEADER, LINES

FIXTURES = Path(__file__).parent / "data" / "original_packets"


def recorded(protocol: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{protocol}.json").read_text())


def messages(case: dict[str, Any]) -> list[StreamData]:
    return [
        StreamData(typ=m["typ"], frames=[base64.b64decode(f) for f in m["frames"]])
        for m in case["messages"]
    ]


def our_parser(protocol: str) -> Callable[[StreamData], Any]:
    """Our parse for one session, called the way the original's payloads call it."""
    if protocol == "positioncap":
        return PositioncapParser().parse
    return {"lecroy": lecroy.parse, "pcap": pcap.parse, "sardana": sardana.parse}.get(
        protocol, albaem.parse
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_originals_frames_parse_to_its_values(protocol):
    cases = recorded(protocol)["original"]
    assert cases, "the fixture lost its cases"
    problems = []
    for case in cases:
        parse = our_parser(protocol)
        for index, (message, result) in enumerate(zip(messages(case), case["results"])):
            assert "parsed" in result, f"the original refused its own {case['case']}: {result}"
            ours = normal(protocol, parse(data=message))
            where = f"{case['case']}[{index}]"
            problems += covers(ours, result["parsed"], where)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_our_frames_parse_in_the_original_to_our_values(protocol):
    cases = recorded(protocol)["ours"]
    built = dict(our_cases()[protocol])
    assert [case["case"] for case in cases] == list(built)
    problems = []
    for case in cases:
        streams = built[case["case"]]
        frames = [[bytes(f) for f in s.frames] for s in streams]
        assert frames == [[bytes(f) for f in m.frames] for m in messages(case)], (
            f"{protocol} {case['case']}: we no longer build the recorded frames; re-run "
            f"tests/data/original_packets/record_devices.py"
        )
        assert [s.typ for s in streams] == [m["typ"] for m in case["messages"]]
        parse = our_parser(protocol)
        for index, (stream, result) in enumerate(zip(streams, case["results"])):
            assert "parsed" in result, f"the original refused our {case['case']}[{index}]: {result}"
            # what we parse from our frames is what the original parsed from them
            ours = normal(protocol, parse(stream))
            problems += covers(ours, result["parsed"], f"{case['case']}[{index}]")
    assert not problems, "\n".join(problems)


def test_our_values_are_what_the_original_read_from_our_frames():
    """The values we put in are the original's reading of our frames (not merely what we read
    back ourselves): spot checks per protocol."""
    results = {p: recorded(p)["ours"] for p in PROTOCOLS}
    sequence = results["lecroy"][1]["results"][0]["parsed"]
    assert sequence["data"][0] == (np.arange(6.0).reshape(2, 3) / 8).tolist()
    assert (sequence["frame"], sequence["ntriggers"], sequence["channels"]) == (0, 2, [2, 4])
    data = results["pcap"][0]["results"][1]["parsed"]
    assert data["INENC3.VAL.Mean"] == [0, 2] and data["frame_number"] == 0
    values = results["positioncap"][0]["results"][1]["parsed"]["fields"]
    assert values["PCAP.BITS0.Value"] == {
        "name": "PCAP.BITS0.Value",
        "type": "uint32",
        "value": 33554433,
        "value_type": "int",
    }
    assert values["INENC1.VAL.Max"]["value"] == -3.7495
    record = results["sardana"][0]["results"][1]["parsed"]
    assert (record["point_nb"], record["dummy_mot_01"]) == (8, 0.05)
    reading = results["albaem"][0]["results"][1]["parsed"]
    assert reading["channel2"] == 4.80528800718246e-10


def test_positioncap_names_equal_the_originals_for_a_panda_session():
    """A real PandA capture (one field captured as Mean, Min and Max): our parser's fields and
    value keys are the original's ``"<field>.<capture>"`` names, and a numpy dtype built from
    them, as payloads do, works (the bare field names would collide)."""
    (case,) = [c for c in recorded("positioncap")["original"] if c["case"] == "panda_session"]
    assert [m["frames"][0] for m in case["messages"]] == [
        base64.b64encode(m).decode() for m in [HEADER, *LINES, END]
    ]
    parser = PositioncapParser()
    packets = [parser.parse(data=m) for m in messages(case)]
    names = [name for name, _ in case["parser_fields"]]
    assert [f.name for f in parser.fields] == names
    assert [[f.name, f.type] for f in parser.fields] == case["parser_fields"]
    assert parser.arm_time.isoformat() == case["parser_arm_time"]
    assert parser.arm_time.tzinfo is None
    rows = [p for p in packets if isinstance(p, PositionCapValues)]
    assert [list(p.fields) for p in rows] == [names] * len(LINES)
    dtype = np.dtype([(f.name, "u4" if f.type == "uint32" else "f8") for f in parser.fields])
    table = np.array([tuple(f.value for f in p.fields.values()) for p in rows], dtype=dtype)
    originals = [r["parsed"]["fields"] for r in case["results"][1:-1]]
    for name in names:
        assert table[name].tolist() == [row[name]["value"] for row in originals]
    assert len(set(names)) == len(names) == 6

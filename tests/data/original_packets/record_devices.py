"""Record what the original dranspose 0.2.0 builds and parses for the device protocols (lecroy,
pcap, positioncap, sardana, albaem) into ``<protocol>.json`` next to this script.

Run ONCE with the original's interpreter, from the repository root::

    /work/orig/.venv/bin/python tests/data/original_packets/record_devices.py \\
        --ours-python .venv/bin/python

Our tests cannot import the original, so its behaviour is recorded here and compared in
``tests/test_compat_packets_devices.py``. Each ``<protocol>.json`` holds two directions:

* ``original``: messages built the way the original's sources and tests build them (its packet
  constructors and ``to_stream_data``, or ``model_dump_json`` where the original ingester framed
  the packet itself, or the raw bytes a device sends that the original's tests replay), with the
  original's parse of each, written in plain JSON by :func:`normal`. Our parser must give the
  same values.
* ``ours``: the frames OUR constructors build (``tests/support/original_devices.py``, obtained by
  running this script in our environment with ``--ours``, which prints them), with what the
  original parses them to. That is the simplest honest way for the original to judge our frames
  without our tests importing it: the test checks that we still build exactly these frames, so
  the original's recorded verdict still applies, and that the values it read are ours.

Frames are stored base64-encoded. A message the original cannot parse is recorded with its
``error``.
"""

from __future__ import annotations

import argparse
import base64
import json
import pickle
import runpy
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def _b64(frames: list[Any]) -> list[str]:
    return [base64.b64encode(f.bytes if hasattr(f, "bytes") else bytes(f)).decode() for f in frames]


def _unb64(frames: list[str]) -> list[bytes]:
    return [base64.b64decode(f) for f in frames]


def ours_main() -> None:
    """In OUR environment: print our cases' frames as JSON."""
    sys.path.insert(0, str(ROOT))
    from tests.support.original_devices import our_cases

    out = {
        protocol: [
            {"case": name, "messages": [{"typ": s.typ, "frames": _b64(s.frames)} for s in stream]}
            for name, stream in cases
        ]
        for protocol, cases in our_cases().items()
    }
    json.dump(out, sys.stdout)


# --- the original's side (only imported when run with the original's interpreter) -------------


def normal(protocol: str, packet: Any) -> dict[str, Any]:
    """The original's packet in plain JSON (the form ``tests/support/original_devices.normal``
    writes ours in)."""
    import numpy as np

    out: dict[str, Any] = {"class": type(packet).__name__}
    if type(packet).__name__ == "LecroyParsed":
        out.update(
            frame=packet.frame,
            htype=packet.htype,
            what=int(packet.what),
            ntriggers=packet.ntriggers,
            seqno=packet.seqno,
            channels=list(packet.channels),
            meta=[m.model_dump(mode="json") for m in packet.meta],
            data=[np.asarray(a).tolist() for a in packet.data],
            dtypes=[str(np.asarray(a).dtype) for a in packet.data],
            timestamps=packet.timestamps,
        )
    elif protocol == "positioncap":
        if type(packet).__name__ == "PositionCapStart":
            out["arm_time"] = packet.arm_time.isoformat()
        elif type(packet).__name__ == "PositionCapValues":
            out["fields"] = {
                key: {
                    "name": f.name,
                    "type": f.type,
                    "value": f.value,
                    "value_type": type(f.value).__name__,
                }
                for key, f in packet.fields.items()
            }
    else:
        out.update(packet.model_dump(mode="json"))
    return out


def _parsers() -> dict[str, Callable[[], Callable[[Any], Any]]]:
    """Per protocol, a factory of the original's parse for one session of messages."""
    from dranspose.data.albaem import AlbaemPacket
    from dranspose.event import StreamData
    from dranspose.middlewares import lecroy, pcap, sardana
    from dranspose.middlewares.positioncap import PositioncapParser

    def albaem(data: StreamData) -> Any:
        # the original has no albaem middleware: its tests validate the frame directly
        return AlbaemPacket.validate_json(data.frames[0])

    return {
        "lecroy": lambda: lecroy.parse,
        "pcap": lambda: pcap.parse,
        "positioncap": lambda: PositioncapParser().parse,
        "sardana": lambda: sardana.parse,
        "albaem": lambda: albaem,
    }


def _original_cases() -> dict[str, list[tuple[str, list[Any]]]]:
    """The original's messages, built as its sources, ingesters and tests build them.

    The original's ``LecroyBase.to_stream_data`` and ``PCAPBase.to_stream_data`` raise (they
    give ``zmq.Frame`` a ``str``), so those packets are framed as the devices send them: their
    ``model_dump_json`` encoded."""
    import numpy as np

    from dranspose.data import albaem, lecroy, pcap, positioncap, sardana
    from dranspose.event import StreamData

    def _json(typ: str, packet: Any) -> Any:
        return StreamData(typ=typ, frames=[packet.model_dump_json().encode()])

    def lecroy_traces(ntriggers: int, rows: int) -> list[bytes]:
        start = lecroy.LecroySeqStart(
            htype="msg", what=1, frame=0, ntriggers=ntriggers, seqno=0, channels=[2, 4]
        )
        frames = [start.model_dump_json().encode()]
        for ch in (2, 4):
            meta = lecroy.LecroyData(
                htype="traces",
                ch=ch,
                ts=1740563614.969933,
                frame=1,
                shape=[rows, 4],
                horiz_offset=-1.0000505879544622e-07,
                horiz_interval=1.25000001668929e-11,
                dtype="float64",
            )
            waves = np.arange(rows * 4, dtype="float64").reshape(rows, 4) * ch / 16
            frames += [meta.model_dump_json().encode(), waves.tobytes()]
            frames.append(pickle.dumps([1740563614.969933 + i for i in range(rows)]))
        frames.append(lecroy.LecroySeqEnd(htype="msg", what=2, frame=2).model_dump_json().encode())
        return frames

    lecroy_cases = [
        (
            "run",
            [
                _json(lecroy.LECROY_TYPE, lecroy.LecroyPrepare(htype="msg", what=0, frame=0)),
                # grouped as the original's ZmqSubLecroyIngester yields a sequence
                StreamData(typ=lecroy.LECROY_TYPE, frames=lecroy_traces(3, 3)),
                StreamData(typ=lecroy.LECROY_TYPE, frames=lecroy_traces(-1, 1)),
                _json(lecroy.LECROY_TYPE, lecroy.LecroyEnd(what=3, frame=2, frames=2)),
            ],
        )
    ]
    pcap_cases = [
        (
            "series",
            [
                _json(
                    "PCAP",
                    pcap.PCAPStart(
                        message_id=1,
                        version=1,
                        message_type="series-start",
                        arm_time="2024-10-07T08:49:10.627Z",
                    ),
                ),
                _json(
                    "PCAP",
                    pcap.PCAPData(
                        message_id=2,
                        version=1,
                        message_type="data",
                        frame_number=0,
                        inttime=[7.1160000000000005, 7.315],
                        triggernumber=[1.0, 2.0],
                        energy=[8879.101048716273, 8879.299376689953],
                        **{"INENC3.VAL.Mean": [0.0, 0.0]},
                    ),
                ),
                _json("PCAP", pcap.PCAPEnd(message_id=3, version=1, message_type="series-end")),
            ],
        )
    ]
    # the original's examples/dummy/source.py pcap_source, three rows
    fields = [
        positioncap.PositionCapField(name="PCAP.BITS0.Value", type="uint32"),
        positioncap.PositionCapField(name="INENC1.VAL.Mean", type="double"),
        positioncap.PositionCapField(name="PCAP.TS_TRIG.Value", type="double"),
    ]
    dummy = [
        positioncap.PositionCapStart(
            arm_time=datetime(2024, 3, 5, 10, 12, 3, 257841, tzinfo=timezone.utc)
        ).to_stream_data(fields)
    ]
    data = [
        np.arange(3, dtype=np.uint32) + 7,
        np.linspace(-3.75, -3.25, 3),
        np.array([0.001000048, 0.011000048, 0.021000048]),
    ]
    for i in range(3):
        for f, d in zip(fields, data):
            f.value = d[i]
        dummy.append(
            positioncap.PositionCapValues(fields={f.name: f for f in fields}).to_stream_data()
        )
    dummy.append(positioncap.PositionCapEnd().to_stream_data())
    # a real PandA session (our tests/support/positioncap.py) and the original's own test
    # stream (its tests/conftest.py), as its TcpPcapIngester frames them
    panda = runpy.run_path(str(ROOT / "tests" / "support" / "positioncap.py"))
    conftest_header = (
        b"arm_time: 2023-12-19T07:51:12.754Z\nmissed: 0\nprocess: Scaled\nformat: ASCII\n"
        b"fields:\n PCAP.BITS0 uint32 Value\n INENC1.VAL double Min scale: 1 offset: 0 units:\n"
        b" INENC1.VAL double Max scale: 1 offset: 0 units:\n"
        b" PCAP.TS_TRIG double Value scale: 8e-09 offset: 0 units: s\n"
        b" INENC1.VAL double Mean scale: 1 offset: 0 units:\n"
        b" SFP3_SYNC_IN.POS1 double Mean scale: 1 offset: 0 units: (null)\n\n"
    )
    conftest_lines = [
        b" 301989857 0 0 0.32175968 0 592910924.7\n",
        b" 33554401 0 0 0.43175968 0 592910919\n",
        b"END 2 Disarmed\n",
    ]

    def raw(messages: list[bytes]) -> list[Any]:
        return [StreamData(typ="PCAP_RAW", frames=[m]) for m in messages]

    positioncap_cases = [
        ("dummy_source", dummy),
        ("panda_session", raw([panda["HEADER"], *panda["LINES"], panda["END"]])),
        ("original_conftest", raw([conftest_header, *conftest_lines])),
    ]

    def sardana_frame(packet: Any) -> Any:
        # the original's HttpSardanaIngester forwards model_dump_json of the posted packet
        return StreamData(typ="sardana", frames=[packet.model_dump_json().encode("utf8")])

    sardana_cases = [
        (
            "scan",
            [
                sardana_frame(
                    sardana.SardanaDataDescription(
                        type="DataDescription",
                        serialno=20338,
                        scandir="/data/staff/femtomax/20230413",
                        title="burstscan dummy_mot_01 0.0 0.1 2 50",
                        column_desc=[
                            {"name": "point_nb", "label": "#Pt No", "dtype": "int64", "shape": []},
                            {
                                "min_value": 0,
                                "max_value": 0.1,
                                "name": "dummy_mot_01",
                                "label": "dummy_mot_01",
                                "dtype": "float64",
                                "shape": [],
                                "is_reference": True,
                            },
                        ],
                        ref_moveables=["dummy_mot_01"],
                        estimatedtime=-2.6585786096205566,
                        total_scan_intervals=2,
                        starttime="Mon Apr 17 14:19:35 2023",
                        counters=[
                            "tango://b-v-femtomax-csdb-0.maxiv.lu.se:10000/expchan/oscc_02_seq_ctrl/1"
                        ],
                        scanfile=["stream.daq", "tests_03.h5"],
                    )
                ),
                sardana_frame(
                    sardana.SardanaRecordData(
                        type="RecordData", timestamp=0.6104741096496582, point_nb=8, dummy_mot_01=0
                    )
                ),
                # point_nb was an extra to the original: a record without it is valid there
                sardana_frame(sardana.SardanaRecordData(timestamp=0.7, dummy_mot_01=0.05)),
                sardana_frame(sardana.SardanaRecordEnd(type="RecordEnd")),
            ],
        )
    ]

    def albaem_frame(packet: Any) -> Any:
        return StreamData(typ="albaem", frames=[packet.model_dump_json().encode()])

    albaem_cases = [
        (
            "acquisition",
            [
                albaem_frame(
                    albaem.AlbaemStart(message_id=1, version=1, message_type="series-start")
                ),
                albaem_frame(
                    albaem.AlbaemData(
                        message_id=2,
                        version=1,
                        message_type="data",
                        frame_number=0,
                        timestamp=7.72645192,
                        acquisition_timestamp=1704807770443944912,
                        channel1=-2.8302592615927417e-11,
                        channel2=-6.091210149949596e-11,
                        channel3=2.5349278603830644e-10,
                        channel4=4.80528800718246e-10,
                    )
                ),
                albaem_frame(
                    albaem.AlbaemEnd(
                        message_id=3,
                        version=1,
                        message_type="series-end",
                        detector_specific={"read_overflow": False, "memory_overflow": False},
                    )
                ),
            ],
        )
    ]
    return {
        "lecroy": lecroy_cases,
        "pcap": pcap_cases,
        "positioncap": positioncap_cases,
        "sardana": sardana_cases,
        "albaem": albaem_cases,
    }


def _session(protocol: str, parse: Callable[[Any], Any], messages: list[Any]) -> list[Any]:
    results = []
    for message in messages:
        try:
            results.append({"parsed": normal(protocol, parse(message))})
        except Exception as exc:  # recorded: the original refuses this message
            results.append({"error": f"{type(exc).__name__}: {exc}"})
    return results


def original_main(ours_python: str) -> None:
    from dranspose.event import StreamData

    ours = json.loads(
        subprocess.run(
            [ours_python, __file__, "--ours"], check=True, capture_output=True, cwd=ROOT
        ).stdout
    )
    parsers = _parsers()
    for protocol, cases in _original_cases().items():
        record: dict[str, Any] = {"original": [], "ours": []}
        for name, messages in cases:
            parser = parsers[protocol]()
            entry: dict[str, Any] = {
                "case": name,
                "messages": [{"typ": m.typ, "frames": _b64(m.frames)} for m in messages],
                "results": _session(protocol, parser, messages),
            }
            owner = getattr(parser, "__self__", None)
            if owner is not None:  # the positioncap parser's state after the session
                entry["parser_fields"] = [[f.name, f.type] for f in owner.fields]
                entry["parser_arm_time"] = owner.arm_time.isoformat()
            record["original"].append(entry)
        for case in ours[protocol]:
            parser = parsers[protocol]()
            messages = [
                StreamData(typ=m["typ"], frames=_unb64(m["frames"])) for m in case["messages"]
            ]
            case["results"] = _session(protocol, parser, messages)
            record["ours"].append(case)
        path = HERE / f"{protocol}.json"
        path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("--ours", action="store_true", help="print our frames (run in our venv)")
    args.add_argument("--ours-python", default=str(ROOT / ".venv" / "bin" / "python"))
    options = args.parse_args()
    if options.ours:
        ours_main()
    else:
        original_main(options.ours_python)

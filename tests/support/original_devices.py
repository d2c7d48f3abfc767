"""Our side of the compatibility fixtures for the device protocols (lecroy, pcap, positioncap,
sardana, albaem) under ``tests/data/original_packets/``.

:func:`our_cases` builds packets with OUR constructors and turns them into frames with our
``to_stream_data``; ``tests/data/original_packets/record_devices.py`` records those frames and
what the original dranspose 0.2.0 parses them to, and ``tests/test_compat_packets_devices.py``
checks that we still build the same frames and that the original's values are ours.
:func:`normal` writes a packet (ours) in the plain JSON form the recorder writes the original's
packets in, so the two compare as values.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np

from dranspose.core.event import StreamData
from dranspose.data.albaem import AlbaemData, AlbaemEnd, AlbaemStart
from dranspose.data.lecroy import (
    LecroyData,
    LecroyEnd,
    LecroyParsed,
    LecroyPrepare,
    LecroySeqEnd,
    LecroySeqStart,
)
from dranspose.data.pcap import PCAPData, PCAPEnd, PCAPStart
from dranspose.data.positioncap import (
    PositionCapEnd,
    PositionCapField,
    PositionCapStart,
    PositionCapValues,
)
from dranspose.data.sardana import SardanaDataDescription, SardanaRecordData, SardanaRecordEnd

PROTOCOLS = ("lecroy", "pcap", "positioncap", "sardana", "albaem")

Case = tuple[str, list[StreamData]]


def _lecroy() -> list[Case]:
    start = LecroySeqStart(frame=0, ntriggers=2, seqno=0, channels=[2, 4])
    meta = [
        LecroyData(
            frame=0,
            ch=ch,
            ts=1740563614.969933,
            shape=[2, 3],
            dtype="float64",
            horiz_offset=-1.0000505879544622e-07,
            horiz_interval=1.25000001668929e-11,
        )
        for ch in (2, 4)
    ]
    traces = LecroyParsed(
        frame=0,
        channels=[2, 4],
        ntriggers=2,
        seqno=0,
        meta=meta,
        data=[np.arange(6.0).reshape(2, 3) / 8, -np.arange(6.0).reshape(2, 3)],
        timestamps=[[0.0, 0.001], [0.0, 0.001]],
        start=start,
        end=LecroySeqEnd(frame=2),
    )
    return [
        ("prepare", [LecroyPrepare(frame=0).to_stream_data()]),
        ("sequence", [traces.to_stream_data()]),
        ("stop", [LecroyEnd(frame=2, frames=2).to_stream_data()]),
    ]


def _pcap() -> list[Case]:
    return [
        (
            "series",
            [
                PCAPStart(
                    message_id=1,
                    version=1,
                    message_type="series-start",
                    arm_time=datetime(2024, 10, 7, 8, 49, 10, 627000),
                ).to_stream_data(),
                PCAPData.from_fields(
                    {"energy": [8879.101048716273, 8879.299376689953], "INENC3.VAL.Mean": [0, 2]},
                    message_id=2,
                    frame_number=0,
                ).to_stream_data(),
                PCAPEnd(message_id=3, version=1, message_type="series-end").to_stream_data(),
            ],
        )
    ]


def _positioncap() -> list[Case]:
    fields = [
        PositionCapField(name="PCAP.TS_TRIG.Value", type="double", scale=8e-09, units="s"),
        PositionCapField(name="INENC1.VAL.Mean", type="double"),
        PositionCapField(name="INENC1.VAL.Max", type="double"),
        PositionCapField(name="PCAP.BITS0.Value", type="uint32"),
    ]
    rows = [(0.001000048, -3.74975, -3.7495, 33554433), (0.011000048, -3.24985, -3.249, 7)]
    values = [
        PositionCapValues(
            fields={f.name: f.model_copy(update={"value": v}) for f, v in zip(fields, row)}
        )
        for row in rows
    ]
    start = PositionCapStart(arm_time=datetime(2024, 3, 5, 10, 12, 3, 257841))
    return [
        (
            "ours",
            [
                start.model_copy(update={"fields": fields}).to_stream_data(),
                *(v.to_stream_data() for v in values),
                PositionCapEnd(samples=2, status="Disarmed").to_stream_data(),
            ],
        ),
        # the original's call: the start holds no fields, to_stream_data is given them
        ("fields_given", [start.to_stream_data(fields), values[0].to_stream_data()]),
    ]


def _sardana() -> list[Case]:
    return [
        (
            "scan",
            [
                SardanaDataDescription(
                    serialno=20338,
                    scandir="/data/staff/femtomax/20230413",
                    title="burstscan dummy_mot_01 0.0 0.1 2 50",
                    column_desc=[
                        {"name": "point_nb", "label": "#Pt No", "dtype": "int64", "shape": []},
                        {"name": "dummy_mot_01", "label": "dummy_mot_01", "is_reference": True},
                    ],
                    ref_moveables=["dummy_mot_01"],
                    scanfile=["stream.daq", "tests_03.h5"],
                ).to_stream_data(),
                SardanaRecordData(
                    point_nb=8, timestamp=0.6104741096496582, dummy_mot_01=0.05
                ).to_stream_data(),
                SardanaRecordEnd().to_stream_data(),
            ],
        )
    ]


def _albaem() -> list[Case]:
    return [
        (
            "acquisition",
            [
                AlbaemStart(message_id=1, version=1, message_type="series-start").to_stream_data(),
                AlbaemData(
                    message_id=2,
                    version=1,
                    message_type="data",
                    frame_number=0,
                    timestamp=7.72645192,
                    acquisition_timestamp=1704807770443944912,
                    channel1=-2.8302592615927417e-11,
                    channel2=4.80528800718246e-10,
                ).to_stream_data(),
                AlbaemEnd(
                    message_id=3,
                    version=1,
                    message_type="series-end",
                    detector_specific={"read_overflow": False, "memory_overflow": False},
                ).to_stream_data(),
            ],
        )
    ]


def our_cases() -> dict[str, list[Case]]:
    """Per protocol, named sequences of messages built with our constructors."""
    return {
        "lecroy": _lecroy(),
        "pcap": _pcap(),
        "positioncap": _positioncap(),
        "sardana": _sardana(),
        "albaem": _albaem(),
    }


def _plain(value: Any) -> Any:
    """numpy arrays and scalars as JSON lists and numbers; the rest left to pydantic."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def normal(protocol: str, packet: Any) -> dict[str, Any]:
    """``packet`` (ours) in the form the recorder writes the original's packets in."""
    out: dict[str, Any] = {"class": type(packet).__name__}
    if isinstance(packet, LecroyParsed):
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
    elif isinstance(packet, PCAPData):
        arrays = packet.fields
        out.update(packet.model_dump(mode="json", exclude=set(arrays)))
        out.update({name: array.tolist() for name, array in arrays.items()})
    elif protocol == "positioncap":
        if isinstance(packet, PositionCapStart):
            out["arm_time"] = packet.arm_time.isoformat() if packet.arm_time else None
        elif isinstance(packet, PositionCapValues):
            out["fields"] = {
                key: {
                    "name": f.name,
                    "type": f.type,
                    "value": _plain(f.value),
                    "value_type": type(f.value).__name__,
                }
                for key, f in packet.fields.items()
            }
    else:
        out.update({k: _plain(v) for k, v in packet.model_dump(mode="json").items()})
    return out


def covers(ours: Any, original: Any, where: str = "packet") -> list[str]:
    """Where ``ours`` differs from ``original``: every key the original has must hold the same
    value in ours (ours may hold more keys, the fields we add); lists element by element;
    numbers exactly (NaN equal to NaN)."""
    if isinstance(original, dict):
        if not isinstance(ours, dict):
            return [f"{where}: ours is {ours!r}, the original's a mapping {original!r}"]
        problems = []
        for key, value in original.items():
            if key not in ours:
                problems.append(f"{where}.{key}: missing in ours (the original's {value!r})")
            else:
                problems.extend(covers(ours[key], value, f"{where}.{key}"))
        return problems
    if isinstance(original, list):
        if not isinstance(ours, list) or len(ours) != len(original):
            return [f"{where}: ours is {ours!r}, the original's {original!r}"]
        return [
            p for i, (a, b) in enumerate(zip(ours, original)) for p in covers(a, b, f"{where}[{i}]")
        ]
    same = ours == original or (
        isinstance(ours, float)
        and isinstance(original, float)
        and math.isnan(ours)
        and math.isnan(original)
    )
    if not same or (type(ours) is bool and type(original) is not bool):
        return [f"{where}: ours is {ours!r}, the original's {original!r}"]
    return []

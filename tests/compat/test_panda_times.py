"""PandA capture times as payloads written for the original dranspose use them.

The TCP position capture (``positioncap``) gives ``arm_time``/``start_time`` as naive datetimes in
UTC: the PandA's trailing ``Z`` is dropped, a time with another offset is converted to UTC. Payloads
add ``timedelta(seconds=PCAP.TS_TRIG)`` to ``arm_time``, compare with naive datetimes and republish
``isoformat()`` strings. The ZMQ protocol of the PandA Tango device (``pcap``) validates its JSON
with pydantic as the original did, which keeps the zone: it is checked on a real capture.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cbor2
import pytest

from dranspose.data.pcap import PCAPStart
from dranspose.data.positioncap import (
    POSITIONCAP_TYPE,
    PositionCapField,
    PositionCapStart,
    PositionCapValues,
)
from dranspose.event import StreamData
from dranspose.io.capture import MESSAGE_TAG, STREAM_TAG, read_raw_capture
from dranspose.middlewares import pcap
from dranspose.middlewares.positioncap import MessageSplitter, PositioncapParser, message_kind
from dranspose.replay import replay

ROOT = Path(__file__).resolve().parents[2]
PCAP_ZMQ = ROOT / "tests" / "data" / "pcap-zmq.cbors"


def header(arm_time: str, start_time: str | None = None) -> bytes:
    lines = [f"arm_time: {arm_time}\n"]
    if start_time is not None:
        lines.append(f"start_time: {start_time}\n")
    lines.append(
        "missed: 0\nprocess: Scaled\nformat: ASCII\nfields:\n"
        " PCAP.TS_TRIG double Value scale: 8e-09 offset: 0 units: s\n"
        " INENC1.VAL double Mean scale: 1 offset: 0 units: mm\n\n"
    )
    return "".join(lines).encode()


SAMPLES = [b" 0.25 1.5\n", b" 0.75 2.5\n", b" 1.000000008 3.5\n"]


def utc_wall_clock(text: str) -> tuple[int, int, int, int, int, int, int]:
    """The UTC wall-clock fields of an ISO time with ``Z`` or ``+hh:mm``/``-hh:mm``, computed by
    hand (calendar.timegm / gmtime), independently of datetime's zone handling."""
    import time

    date, clock = text.split("T")
    zone_at = max(clock.rfind("+"), clock.rfind("-"))
    if clock.endswith("Z"):
        clock, shift = clock[:-1], 0
    elif zone_at > 0:
        hours, minutes = clock[zone_at + 1 :].split(":")
        sign = 1 if clock[zone_at] == "+" else -1
        clock, shift = clock[:zone_at], sign * (int(hours) * 3600 + int(minutes) * 60)
    else:
        shift = 0
    whole, _, fraction = clock.partition(".")
    hour, minute, second = (int(x) for x in whole.split(":"))
    year, month, day = (int(x) for x in date.split("-"))
    seconds = calendar.timegm((year, month, day, hour, minute, second)) - shift
    t = time.gmtime(seconds)
    micro = int((fraction + "000000")[:6])
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, micro)


ARM_TIMES = [
    "2023-12-19T07:51:12.754Z",  # older firmware: milliseconds
    "2024-03-05T10:12:03.257841574Z",  # recent firmware: nanoseconds
    "2024-03-05T12:12:03.257841+02:00",  # another offset: converted to UTC
    "2024-03-05T23:30:00.5-05:30",  # ... across midnight
    "2024-01-01T00:30:00.000+01:00",  # ... across the new year
]


@pytest.mark.parametrize("arm_time", ARM_TIMES)
def test_arm_time_is_naive_utc(arm_time):
    parser = PositioncapParser()
    start = parser.parse(StreamData(typ=POSITIONCAP_TYPE, frames=[header(arm_time, arm_time)]))
    expected = datetime(*utc_wall_clock(arm_time))
    assert isinstance(start, PositionCapStart)
    for value in (start.arm_time, start.start_time, parser.arm_time):
        assert type(value) is datetime
        assert value.tzinfo is None
        assert value == expected


def test_a_header_without_zone_is_taken_as_utc_already():
    parser = PositioncapParser()
    start = parser.parse(
        StreamData(typ=POSITIONCAP_TYPE, frames=[header("2024-03-05T10:12:03.257")])
    )
    assert start.arm_time == datetime(2024, 3, 5, 10, 12, 3, 257000)
    assert start.arm_time.tzinfo is None


@pytest.mark.parametrize(
    "given, expected",
    [
        (
            datetime(2024, 3, 5, 12, 12, 3, tzinfo=timezone(timedelta(hours=2))),
            datetime(2024, 3, 5, 10, 12, 3),
        ),
        (datetime(2024, 3, 5, 10, 12, 3, tzinfo=timezone.utc), datetime(2024, 3, 5, 10, 12, 3)),
        (datetime(2024, 3, 5, 10, 12, 3), datetime(2024, 3, 5, 10, 12, 3)),
        ("2024-03-05T07:12:03-03:00", datetime(2024, 3, 5, 10, 12, 3)),
    ],
)
def test_built_packets_hold_naive_utc_and_write_it_with_z(given, expected):
    start = PositionCapStart(
        arm_time=given,
        start_time=given,
        fields=[PositionCapField(name="PCAP.TS_TRIG.Value", type="double")],
    )
    assert start.arm_time == expected and start.arm_time.tzinfo is None
    assert start.start_time == expected and start.start_time.tzinfo is None
    text = start.message().decode()
    assert "arm_time: 2024-03-05T10:12:03.000Z\n" in text
    again = PositioncapParser().parse(StreamData(typ=POSITIONCAP_TYPE, frames=[start.message()]))
    assert again.arm_time == expected


def test_a_tcp_session_cut_into_messages_gives_trigger_times_as_payloads_compute_them():
    session = b"OK\n" + header("2024-03-05T12:12:03.250+02:00") + b"".join(SAMPLES) + b"END 3 Ok\n"
    splitter = MessageSplitter()
    messages = []
    for at in range(0, len(session), 7):  # as TCP delivers it, in pieces
        messages.extend(splitter.feed(session[at : at + 7]))
    parser = PositioncapParser()
    times = []
    for message in messages:
        if message_kind(message) == "skip":
            continue
        packet = parser.parse(StreamData(typ=POSITIONCAP_TYPE, frames=[message]))
        if isinstance(packet, PositionCapValues):
            trigger = parser.arm_time + timedelta(seconds=packet.fields["PCAP.TS_TRIG.Value"].value)
            times.append(trigger)
    armed = datetime(2024, 3, 5, 10, 12, 3, 250000)
    assert times == [
        armed + timedelta(microseconds=250000),
        armed + timedelta(microseconds=750000),
        armed + timedelta(seconds=1),
    ]
    # naive arithmetic and comparisons, as the original's payloads do them
    assert times[1] - times[0] == timedelta(seconds=0.5)
    assert datetime(2024, 3, 5, 10, 12, 3) < times[0] < datetime(2024, 3, 5, 10, 12, 5)
    assert [t.isoformat() for t in times] == [
        "2024-03-05T10:12:03.500000",
        "2024-03-05T10:12:04",
        "2024-03-05T10:12:04.250000",
    ]


# --- in a replay: a payload republishing isoformat() strings --------------------------------------


class TriggerTimeWorker:
    def __init__(self, *args, **kwargs):
        self.parser = PositioncapParser()

    def process_event(self, event, parameters=None):
        packet = self.parser.parse(event.streams["pcap"])
        if isinstance(packet, PositionCapValues):
            seconds = packet.fields["PCAP.TS_TRIG.Value"].value
            return {
                "trigger": (self.parser.arm_time + timedelta(seconds=seconds)).isoformat(),
                "armed": self.parser.arm_time.isoformat(),
            }
        return None


class TimesReducer:
    published: list[Any] = []

    def __init__(self, *args, **kwargs):
        self.publish: dict[str, Any] = {"times": []}
        TimesReducer.published = self.publish["times"]

    def process_result(self, result, parameters=None):
        self.publish["times"].append(result.payload)


def test_replayed_payload_republishes_naive_utc_iso_strings(tmp_path):
    messages = [header("2023-12-19T07:51:12.754Z")] + SAMPLES + [b"END 3 Disarmed\n"]
    dump = tmp_path / "pcap.cbors"
    dump.write_bytes(
        b"".join(
            cbor2.dumps(
                cbor2.CBORTag(
                    MESSAGE_TAG,
                    [n, {"pcap": cbor2.CBORTag(STREAM_TAG, [POSITIONCAP_TYPE, [message]])}],
                )
            )
            for n, message in enumerate(messages)
        )
    )
    summary = replay(TriggerTimeWorker, TimesReducer, [dump], None, None, nworkers=1)
    assert summary.ok and summary.events == 5
    assert TimesReducer.published == [
        {"trigger": "2023-12-19T07:51:13.004000", "armed": "2023-12-19T07:51:12.754000"},
        {"trigger": "2023-12-19T07:51:13.504000", "armed": "2023-12-19T07:51:12.754000"},
        {"trigger": "2023-12-19T07:51:13.754000", "armed": "2023-12-19T07:51:12.754000"},
    ]


# --- the ZMQ protocol, on a real capture ------------------------------------------------------------


def test_real_zmq_capture_arm_time_keeps_the_zone_as_pydantic_gives_it():
    first = next(read_raw_capture(PCAP_ZMQ))
    assert b'"arm_time": "2024-10-07T08:49:10.627Z"' in first[0]
    start = pcap.parse(StreamData(typ="PCAP", frames=first))
    assert isinstance(start, PCAPStart)
    expected = datetime(*utc_wall_clock("2024-10-07T08:49:10.627Z"), tzinfo=timezone.utc)
    assert start.arm_time == expected
    assert start.arm_time.utcoffset() == timedelta(0)
    # what payloads do with it: arithmetic with timedeltas, and a naive UTC value when wanted
    assert start.arm_time + timedelta(seconds=1.5) == expected + timedelta(seconds=1.5)
    assert start.arm_time.astimezone(timezone.utc).replace(tzinfo=None) == datetime(
        2024, 10, 7, 8, 49, 10, 627000
    )

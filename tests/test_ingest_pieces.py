"""The ingester's pure pieces, each against values worked out here by hand: the batch
(core/batch.py), the re-delivery buffer (core/redelivery.py), the series gate (core/series.py)
and the registry's say on which protocols have a series start (protocols/registry.py)."""

from __future__ import annotations

import logging

import pytest

from dranspose.core.batch import BATCH_BYTES, BATCH_EVENTS, EventBatch
from dranspose.core.coordination import UpstreamState
from dranspose.core.redelivery import KEEP_BYTES, KEEP_EVENTS, Redelivery
from dranspose.core.series import SeriesGate
from dranspose.protocols.registry import PROTOCOLS, Kind, get_protocol, number_series

# -- the batch -------------------------------------------------------------------------------


def test_the_batch_is_full_at_its_event_limit() -> None:
    batch = EventBatch(max_events=3, max_bytes=1000)
    assert not batch.add(0, ["w0"], [b"a"], 1)
    assert not batch.add(1, ["w0"], [b"b"], 1)
    assert batch.add(2, ["w0"], [b"c"], 1)  # the third of three
    assert batch.take() == [(0, [b"a"]), (1, [b"b"]), (2, [b"c"])]
    assert (batch.events, batch.size, batch.workers) == ([], 0, ["w0"])


def test_the_batch_is_full_at_its_byte_limit_and_one_large_event_fills_it() -> None:
    batch = EventBatch(max_events=100, max_bytes=10)
    assert not batch.add(0, ["w0"], [b"x" * 6], 6)
    assert batch.add(1, ["w0"], [b"x" * 4], 4)  # 6 + 4 = 10 bytes
    batch.take()
    assert batch.add(2, ["w1"], [b"x" * 50], 50)  # alone over the limit: goes at once
    assert batch.workers == ["w1"]


def test_the_batch_limits_are_the_documented_ones() -> None:
    assert (BATCH_EVENTS, BATCH_BYTES) == (64, 1 << 20)
    batch = EventBatch()
    full = [batch.add(n, ["w0"], [], 0) for n in range(64)]
    assert full == [False] * 63 + [True]


# -- the re-delivery buffer ------------------------------------------------------------------


def test_forwarding_keeps_frames_and_drops_dead_destinations() -> None:
    buffer = Redelivery()
    workers = buffer.forwarded(0, ["w0", "w1"], {"w1"}, [b"abc"], 3)
    assert workers == ["w1"]  # w0 left the scan: its replacement comes by re-delivery
    assert buffer.frames(0) == [b"abc"]
    assert (buffer.kept_bytes, buffer.forwarded_up_to) == (3, 0)


def test_a_redelivery_of_an_event_not_read_yet_adds_to_its_destinations() -> None:
    buffer = Redelivery()
    buffer.forwarded(0, ["w0"], {"w0", "w1", "w2"}, [b"a"], 1)
    assert not buffer.reroute(0, ["w1"])  # read already: the caller resends its frames
    assert buffer.reroute(2, ["w1"])
    assert buffer.reroute(2, ["w2"])
    assert buffer.forwarded(1, ["w0"], {"w0"}, [b"b"], 1) == ["w0"]
    assert buffer.forwarded(2, ["w0"], {"w0", "w1", "w2"}, [b"c"], 1) == ["w0", "w1", "w2"]
    assert buffer.rerouted == {}


def test_the_oldest_frames_go_first_at_the_event_limit() -> None:
    buffer = Redelivery(keep_events=3)
    for event in range(5):
        buffer.forwarded(event, ["w0"], {"w0"}, [bytes([event])], 10)
    assert list(buffer.kept) == [2, 3, 4]
    assert buffer.kept_bytes == 30
    assert buffer.frames(1) is None  # a re-delivery of it reports the event lost


def test_the_oldest_frames_go_first_at_the_byte_limit_but_the_newest_stays() -> None:
    buffer = Redelivery(keep_bytes=25)
    for event, size in enumerate([10, 10, 10]):
        buffer.forwarded(event, ["w0"], {"w0"}, [b""], size)
    assert list(buffer.kept) == [1, 2]  # 30 > 25: event 0 went; 20 <= 25
    buffer.forwarded(3, ["w0"], {"w0"}, [b""], 100)
    assert list(buffer.kept) == [3]  # over the limit alone, but kept
    assert buffer.kept_bytes == 100


def test_confirmed_events_are_forgotten() -> None:
    buffer = Redelivery()
    for event in range(4):
        buffer.forwarded(event, ["w0"], {"w0"}, [b""], 5)
    buffer.forget_below(2)
    assert list(buffer.kept) == [2, 3]
    assert buffer.kept_bytes == 10
    buffer.forget_below(10)
    assert (list(buffer.kept), buffer.kept_bytes) == ([], 0)


def test_the_keep_limits_are_the_documented_ones() -> None:
    assert (KEEP_EVENTS, KEEP_BYTES) == (10_000, 256 << 20)


# -- the series gate -------------------------------------------------------------------------


def test_the_gate_discards_until_the_series_start_and_says_how_many(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="dranspose.core.series")
    state = UpstreamState(url="tcp://x", transport="pull", protocol="stins")
    gate = SeriesGate("cam", state)
    assert not gate.open
    assert [gate.admit(False) for _ in range(3)] == [False, False, False]
    assert len(caplog.records) == 1  # one line when discarding begins
    assert gate.admit(True)
    assert gate.open and state.discarded == 3
    assert caplog.records[-1].getMessage() == (
        "stream cam: 3 messages before the series start were discarded"
    )


def test_the_gate_says_nothing_more_for_a_single_discarded_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="dranspose.core.series")
    state = UpstreamState(url="tcp://x", transport="pull", protocol="stins")
    gate = SeriesGate("cam", state)
    gate.admit(False)
    gate.report_discarded()  # the scan ended before a series started
    assert len(caplog.records) == 1 and state.discarded == 1


def test_without_a_series_start_the_gate_is_open_from_the_first_message() -> None:
    state = UpstreamState(url="tcp://x", transport="pull", protocol="raw")
    assert SeriesGate("cam", state, series_start=get_protocol("raw").series_start).open


# -- the registry says which protocols have a series start -----------------------------------


def test_only_raw_has_no_series_start() -> None:
    assert [name for name, p in PROTOCOLS.items() if not p.series_start] == ["raw"]


def test_number_series_asks_the_protocol_whether_a_series_starts() -> None:
    messages = [[b"first"], [b"second"]]
    assert list(number_series(get_protocol("raw"), messages)) == [(0, [b"first"]), (1, [b"second"])]
    stins = get_protocol("stins")
    assert stins.classify([b"first"]) is Kind.EVENT
    assert list(number_series(stins, messages)) == []  # no header: nothing numbered

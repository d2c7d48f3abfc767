"""The one rate estimator (core/rates.py) and the three rates built on it."""

from __future__ import annotations

import pytest

from dranspose.core.coordination import ScanInfo
from dranspose.core.protocol import WorkerName
from dranspose.core.rates import RateWindow
from dranspose.core.scan_account import ScanAccount
from dranspose.core.triggermap import TriggerMap
from dranspose.http.ensemble import RateTracker


def test_rate_over_the_samples_of_the_window():
    rates = RateWindow(10.0)
    assert rates.rate(0.0, 10.0) is None  # nothing seen
    rates.add(100.0, 0)
    assert rates.rate(100.0, 10.0) is None  # one sample
    rates.add(102.0, 50)
    assert rates.rate(102.0, 10.0) == pytest.approx(25.0)
    rates.add(112.0, 200)
    rates.add(113.0, 210)
    assert rates.rate(113.0, 10.0) == pytest.approx(10.0)  # 102 is out of the window
    assert rates.rate(113.0, 1.0) == pytest.approx(10.0)
    assert rates.rate(113.0, 1.0, min_span=2.0) is None  # too short a span to tell


def test_a_sparse_reader_gets_the_rate_since_its_previous_read():
    rates = RateWindow(10.0)
    rates.add(0.0, 0)
    rates.add(30.0, 600)
    assert rates.rate(30.0, 10.0) == pytest.approx(20.0)


def test_a_counter_not_seen_lately_has_no_rate():
    rates = RateWindow(10.0)
    rates.add(0.0, 0)
    rates.add(1.0, 100)
    assert rates.rate(20.0, 1.0) is None
    assert rates.rate(20.0, 10.0) is None


def test_a_restarted_counter_starts_again():
    rates = RateWindow(10.0)
    rates.add(0.0, 500)
    rates.add(1.0, 10)  # lower: the process restarted
    assert list(rates.samples) == [(1.0, 10)]
    rates.add(3.0, 30)
    assert rates.rate(3.0, 10.0) == pytest.approx(10.0)


def test_old_samples_are_dropped_but_one_base_and_maxlen_bound_them():
    rates = RateWindow(10.0)
    for second in range(100):
        rates.add(float(second), second)
    assert rates.samples[0][0] == 88.0  # the newest one outside the horizon
    bounded = RateWindow(10.0, maxlen=5)
    for i in range(50):
        bounded.add(i * 0.01, i)
    assert len(bounded.samples) == 5


def test_ensemble_rate_is_zero_until_it_can_tell():
    tracker = RateTracker()
    assert tracker.rate("worker:a", 0.0, 0) == 0.0
    assert tracker.rate("worker:a", 2.0, 20) == pytest.approx(10.0)
    assert tracker.rate("worker:b", 2.0, 7) == 0.0  # its own samples


def test_worker_load_lists_every_worker_of_the_scan():
    trigger_map = TriggerMap.simple(["s"], 10)
    scan = ScanInfo(scan_id="s1", streams=["s"], workers=["w0", "w1"], n_events=len(trigger_map))
    workers = {WorkerName("w0"): {"generic"}, WorkerName("w1"): {"generic"}}
    run = ScanAccount(scan, trigger_map, trigger_map.request, workers)
    w0 = WorkerName("w0")
    run.totals[w0] = 5
    run.sample_rate(w0, 100.0)
    run.totals[w0] = 15
    run.sample_rate(w0, 100.5)
    load = run.load(100.5)
    assert load[w0].completed == 15
    assert load[w0].rate_1s == pytest.approx(20.0)
    assert load[w0].rate_10s == pytest.approx(20.0)
    assert load[WorkerName("w1")].model_dump() == {"completed": 0, "rate_1s": 0.0, "rate_10s": 0.0}
    assert run.load(200.0)[w0].rate_1s == 0.0  # idle since

"""The statistics recorder and the Prometheus rendering, without a running pipeline.

The end-to-end checks (a real scan, counters against ``/progress``) are in test_observability.py;
here a controller's real :class:`ScanAccount` loses a worker, which a healthy scan cannot show.
"""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from dranspose.core.coordination import ComponentKind, FailedEvent, ScanInfo
from dranspose.core.protocol import WorkerName
from dranspose.core.scan_account import ScanAccount
from dranspose.core.stats import PROCESSING_BUCKETS, ComponentStats, Histogram, StatsRecorder
from dranspose.core.triggermap import TriggerMap
from dranspose.http.metrics import PipelineView, ScanCounters, render


def samples_of(view: PipelineView) -> dict[tuple[str, frozenset], float]:
    text = render(view).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_histogram_buckets_count_values_up_to_their_bound():
    values = [0.0, 0.0001, 0.00011, 0.003, 0.5, 0.5, 1.0, 7.0, 29.9, 30.0, 31.0, 1e6]
    histogram = Histogram()
    for value in values:
        histogram.observe(value)
    snapshot = histogram.snapshot()
    expected = [(bound, sum(v <= bound for v in values)) for bound in PROCESSING_BUCKETS]
    assert snapshot.cumulative() == [*expected, (float("inf"), len(values))]
    assert snapshot.sum == sum(values)


def test_histogram_renders_as_prometheus_buckets():
    histogram = Histogram()
    for value in (0.002, 0.002, 4.0):
        histogram.observe(value)
    stats = ComponentStats(kind=ComponentKind.worker, name="w0", processing=histogram.snapshot())
    samples = samples_of(PipelineView(stats=[stats]))

    def bucket(le: str) -> float:
        return samples[
            (
                "dranspose_event_processing_seconds_bucket",
                frozenset({"worker": "w0", "le": le}.items()),
            )
        ]

    assert bucket("0.001") == 0 and bucket("0.0025") == 2 and bucket("2.5") == 2
    assert bucket("5.0") == 3 and bucket("+Inf") == 3
    assert (
        samples[("dranspose_event_processing_seconds_sum", frozenset({"worker": "w0"}.items()))]
        == 4.004
    )


def test_ingested_counts_messages_and_their_bytes_per_stream():
    recorder = StatsRecorder(ComponentKind.ingester, "ing")
    recorder.ingested("a", [b"xx", b"yyy"])
    recorder.ingested("a", [b"z"])
    recorder.ingested("b", [])
    streams = recorder.snapshot().streams
    assert {s: (c.frames, c.bytes) for s, c in streams.items()} == {"a": (2, 6), "b": (1, 0)}


def test_busy_time_includes_a_call_still_running():
    recorder = StatsRecorder(ComponentKind.worker, "w")
    recorder.begin()
    time.sleep(0.05)
    snapshot = recorder.snapshot()
    assert snapshot.busy_seconds >= 0.05
    assert snapshot.processing is None  # no call has finished yet


def test_counters_of_a_scan_that_lost_a_worker_equal_its_progress():
    trigger_map = TriggerMap.simple(["xrd"], 20)
    workers = {WorkerName("w0"): {"generic"}, WorkerName("w1"): {"generic"}}
    scan = ScanInfo(
        scan_id="s1", streams=["xrd"], workers=sorted(workers), n_events=len(trigger_map)
    )
    run = ScanAccount(scan, trigger_map, trigger_map.request, workers)
    released = run.released(run.assigner.request(WorkerName("w0"), 6))
    released += run.released(run.assigner.request(WorkerName("w1"), 6))
    owners = {a.event_number: {w for names in a.streams.values() for w in names} for a in released}
    w0_events = sorted(e for e, names in owners.items() if "w0" in names)
    failing = w0_events[1]
    for event in w0_events:
        if event == failing:
            run.failed(FailedEvent(event_number=event, worker="w0", reason="boom"))
        else:
            run.completed(WorkerName("w0"), event)
    run.lost(WorkerName("w1"), "worker w1 died")

    samples = samples_of(PipelineView(scan=ScanCounters.of(run), worker_reports=run.totals))

    def value(name: str) -> float:
        return samples[(name, frozenset())]

    lost = {e for e, names in owners.items() if "w1" in names}  # w1 never reported
    assert lost and value("dranspose_events_lost_total") == len(run.progress.lost) == len(lost)
    done = {e for e, names in owners.items() if names == {"w0"} and e != failing}
    assert value("dranspose_events_completed_total") == run.progress.completed == len(done)
    assert value("dranspose_events_failed_total") == 1
    assert value("dranspose_events_assigned_total") == len(released)
    assert samples[
        ("dranspose_worker_events_reported_total", frozenset({"worker": "w0"}.items()))
    ] == len(w0_events)

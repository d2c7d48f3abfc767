"""Metrics, health and gathered logs of a running pipeline (real Redis, ZeroMQ and HTTP).

One scan of the shipped capture runs through ``tests.payloads.noisy`` (a warning per event, events
``3k + 2`` fail). The module fixture scrapes ``/metrics`` and queries the logs API once the
asynchronously published statistics have caught up; each test checks one behaviour against
numbers computed independently (the capture decoded with cbor2, the controller's ``/progress``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Optional

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dranspose.core.triggermap import TriggerMap
from tests.conftest import XRD_CAPTURE, raw_xrd_events
from tests.payloads.noisy import fails
from tests.pipeline import Pipeline, free_port, push_capture, request_json, wait_for

N_IMAGES = 9
TOTAL = N_IMAGES + 2  # the trigger map's reserved first and last events
WORKERS = ["worker0", "worker1"]
NOISY = ("tests.payloads.noisy:NoisyWorker", "tests.payloads.noisy:ListReducer")


def parse_samples(text: str) -> dict[tuple[str, frozenset], float]:
    """(sample name, labels) -> value, read with prometheus_client's own parser."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> Optional[float]:
    return samples.get((name, frozenset(labels.items())))


@dataclass
class Observed:
    progress: dict
    load: dict
    metrics: httpx.Response
    reducer_results: int
    controller_health: httpx.Response
    reducer_health: httpx.Response
    logs: dict[str, httpx.Response] = field(default_factory=dict)

    @property
    def samples(self) -> dict:
        return parse_samples(self.metrics.text)


LOG_QUERIES = {
    "worker0": "/api/v1/logs?component=worker0&limit=1000",
    "worker1": "/api/v1/logs?component=worker1&limit=1000",
    "errors": "/api/v1/logs?level=error&limit=1000",
    "warnings": "/api/v1/logs?level=WARNING&limit=1000",
    "newest2": "/api/v1/logs?level=WARNING&limit=2",
    "bad level": "/api/v1/logs?level=LOUD",
    "bad since": "/api/v1/logs?since=yesterday",
}


def noisy_events(records: list[dict]) -> list[int]:
    return [int(r["message"].split()[-1]) for r in records if r["logger"] == "tests.payloads.noisy"]


@pytest.fixture(scope="module")
def observed(redis_url) -> Observed:
    async def scenario() -> Observed:
        pipe = Pipeline(redis_url, *NOISY, ["xrd"], prefix="observe")
        reducer_port = free_port()
        pipe.reducer.http_port = reducer_port
        async with pipe:
            await pipe.start_scan(request_json(TriggerMap.simple(["xrd"], N_IMAGES)))
            await push_capture(pipe.upstream_ports["xrd"], XRD_CAPTURE)
            progress = await pipe.wait_finished(60)
            load = (await pipe.client.get("/api/v1/load")).json()
            shares = sum(entry["completed"] for entry in load.values())
            scraped: dict[str, Any] = {}

            async def caught_up() -> bool:
                """Statistics travel with heartbeats, records with the log flush: wait for both."""
                scraped["metrics"] = metrics = await pipe.client.get("/metrics")
                samples = parse_samples(metrics.text)
                histograms = [
                    sample(samples, "dranspose_event_processing_seconds_count", worker=w)
                    for w in WORKERS
                ]
                logged = (await pipe.client.get("/api/v1/logs?level=WARNING&limit=1000")).json()
                return (
                    sample(
                        samples,
                        "dranspose_frames_ingested_total",
                        stream="xrd",
                        ingester="xrd-ingester",
                    )
                    == TOTAL
                    and histograms == [load[w]["completed"] for w in WORKERS]
                    and sample(
                        samples, "dranspose_result_processing_seconds_count", reducer="reducer"
                    )
                    == pipe.reducer.results
                    and len(noisy_events(logged)) == shares
                )

            try:
                await wait_for(caught_up, 30)
            except TimeoutError:
                pass  # the tests show what differs
            # Records still arriving between two of the queries below (the ingester noting its
            # upstream went away, say) would make them disagree: query once the log is quiet.
            seen: list[Any] = []

            async def quiet() -> bool:
                logged = (await pipe.client.get("/api/v1/logs?limit=1000")).json()
                settled = bool(seen) and logged == seen[-1]
                seen.append(logged)
                await asyncio.sleep(0.3)
                return settled

            try:
                await wait_for(quiet, 10)
            except TimeoutError:
                pass  # the tests show what differs
            logs = {key: await pipe.client.get(query) for key, query in LOG_QUERIES.items()}
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{reducer_port}", timeout=10
            ) as reducer_client:
                reducer_health = await reducer_client.get("/healthz")
            return Observed(
                progress=progress,
                load=load,
                metrics=scraped["metrics"],
                reducer_results=pipe.reducer.results,
                controller_health=await pipe.client.get("/healthz"),
                reducer_health=reducer_health,
                logs=logs,
            )

    return asyncio.run(scenario())


# -- /metrics ------------------------------------------------------------------------------------


def test_metrics_is_prometheus_text(observed):
    assert observed.metrics.status_code == 200
    assert observed.metrics.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(observed.metrics.text)}
    assert names and all(name.startswith("dranspose_") for name in names)


def test_event_counters_equal_progress(observed):
    samples, progress = observed.samples, observed.progress
    assert sample(samples, "dranspose_events_expected") == progress["total"] == TOTAL
    assert sample(samples, "dranspose_events_assigned_total") == TOTAL
    assert sample(samples, "dranspose_events_completed_total") == progress["completed"]
    failed_events = {f["event_number"] for f in progress["failed"]}
    assert sample(samples, "dranspose_events_failed_total") == len(failed_events)
    assert sample(samples, "dranspose_events_lost_total") == len(progress["lost"]) == 0
    assert sample(samples, "dranspose_scan_finished") == 1


def test_failed_counter_counts_the_events_the_payload_fails(observed):
    expected = len([e for e in range(TOTAL) if fails(e)])
    assert sample(observed.samples, "dranspose_events_failed_total") == expected == 3


def test_scan_id_is_only_on_the_info_metric(observed):
    families = list(text_string_to_metric_families(observed.metrics.text))
    carrying = {f.name for f in families for s in f.samples if "scan_id" in s.labels}
    assert carrying == {"dranspose_scan_info"}
    assert (
        sample(observed.samples, "dranspose_scan_info", scan_id=observed.progress["scan_id"]) == 1
    )


def test_labels_are_bounded_to_component_names(observed):
    allowed = {"worker", "stream", "ingester", "reducer", "kind", "component", "scan_id", "le"}
    labels = {
        k
        for family in text_string_to_metric_families(observed.metrics.text)
        for s in family.samples
        for k in s.labels
    }
    assert labels <= allowed


def test_frames_and_bytes_ingested_equal_what_the_source_sent(observed):
    sent = raw_xrd_events()  # the capture decoded with cbor2 only
    labels = {"stream": "xrd", "ingester": "xrd-ingester"}
    assert sample(observed.samples, "dranspose_frames_ingested_total", **labels) == len(sent)
    assert sample(observed.samples, "dranspose_bytes_ingested_total", **labels) == sum(
        len(frame) for _, frames in sent for frame in frames
    )


def test_worker_histograms_count_the_events_each_worker_reported(observed):
    for worker in WORKERS:
        reported = observed.load[worker]["completed"]
        assert (
            sample(observed.samples, "dranspose_worker_events_reported_total", worker=worker)
            == reported
        )
        assert (
            sample(observed.samples, "dranspose_event_processing_seconds_count", worker=worker)
            == reported
        )
        assert (
            sample(
                observed.samples,
                "dranspose_event_processing_seconds_bucket",
                worker=worker,
                le="+Inf",
            )
            == reported
        )


def test_worker_busy_time_is_the_sum_of_its_processing_times(observed):
    for worker in WORKERS:
        busy = sample(observed.samples, "dranspose_worker_busy_seconds_total", worker=worker)
        total = sample(observed.samples, "dranspose_event_processing_seconds_sum", worker=worker)
        assert busy == pytest.approx(total, rel=1e-9, abs=1e-9) and busy > 0
        assert 0 <= sample(observed.samples, "dranspose_worker_busy_ratio", worker=worker) <= 1


def test_reducer_histogram_counts_every_result(observed):
    # the noisy worker returns a result for every event share that did not fail
    shares = sum(observed.load[w]["completed"] for w in WORKERS)
    failures = len(observed.progress["failed"])
    assert observed.reducer_results == shares - failures
    assert (
        sample(observed.samples, "dranspose_result_processing_seconds_count", reducer="reducer")
        == shares - failures
    )
    assert sample(observed.samples, "dranspose_reducer_queue_depth", reducer="reducer") == 0


def test_every_component_is_up(observed):
    up = {
        (dict(labels)["kind"], dict(labels)["component"])
        for (name, labels), value in observed.samples.items()
        if name == "dranspose_component_up" and value == 1
    }
    assert up == {
        ("controller", "controller"),
        ("worker", "worker0"),
        ("worker", "worker1"),
        ("reducer", "reducer"),
        ("ingester", "xrd-ingester"),
    }


# -- /healthz ------------------------------------------------------------------------------------


def test_controller_healthz(observed):
    assert observed.controller_health.status_code == 200
    body = observed.controller_health.json()
    assert body["status"] == "ok" and body["component"] == "controller"
    assert body["scan_id"] == observed.progress["scan_id"]


def test_reducer_healthz(observed):
    assert observed.reducer_health.status_code == 200
    assert observed.reducer_health.json() == {"status": "ok", "component": "reducer"}


def test_replay_serves_healthz_on_its_reducer_port(live_replay):
    client, _ = live_replay
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "component": "replay"}


# -- /api/v1/logs --------------------------------------------------------------------------------


def test_payload_warnings_appear_under_their_worker(observed):
    for worker in WORKERS:
        records = observed.logs[worker].json()
        warnings = [r for r in records if r["logger"] == "tests.payloads.noisy"]
        assert {r["level"] for r in warnings} == {"WARNING"}
        # one warning per event share the worker processed, as the controller counted them
        assert len(noisy_events(records)) == observed.load[worker]["completed"]


def test_every_event_is_logged_by_some_worker(observed):
    seen = set(noisy_events(observed.logs["worker0"].json()))
    seen |= set(noisy_events(observed.logs["worker1"].json()))
    assert seen == set(range(TOTAL))


def test_component_filter_returns_only_that_component(observed):
    for worker in WORKERS:
        assert {r["component"] for r in observed.logs[worker].json()} == {worker}


def test_records_have_the_documented_fields_oldest_first(observed):
    records = observed.logs["warnings"].json()
    assert records
    for record in records:
        assert set(record) == {"id", "time", "component", "level", "logger", "message"} | {
            "created",  # the original dranspose's names, as strings
            "levelname",
            "name",
            "msg",
            "lineno",
        }
        assert isinstance(record["time"], float)
    ids = [tuple(map(int, r["id"].split("-"))) for r in records]
    assert ids == sorted(ids)


def test_level_filter_keeps_that_level_and_above(observed):
    errors = observed.logs["errors"].json()
    assert {r["level"] for r in errors} <= {"ERROR", "CRITICAL"}
    failed = [r for r in errors if "failed in process_event" in r["message"]]
    assert len(failed) == len(observed.progress["failed"])
    assert all("Traceback" in r["message"] for r in failed)  # the exception text travels along
    warnings = observed.logs["warnings"].json()
    assert {r["level"] for r in warnings} >= {"WARNING", "ERROR"}
    assert "INFO" not in {r["level"] for r in warnings}


def test_limit_returns_the_newest_records(observed):
    assert observed.logs["newest2"].json() == observed.logs["warnings"].json()[-2:]


def test_invalid_level_is_422_naming_the_levels(observed):
    response = observed.logs["bad level"]
    assert response.status_code == 422
    assert "LOUD" in response.json()["detail"] and "WARNING" in response.json()["detail"]


def test_invalid_since_is_422(observed):
    response = observed.logs["bad since"]
    assert response.status_code == 422
    assert "yesterday" in response.json()["detail"]

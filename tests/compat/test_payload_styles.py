"""Payloads in the styles of the original dranspose, run the way their test suites run them:
``replay(...)`` in a thread, ``done_event``, then h5pyd (0.18 or 1.x, whichever is installed;
CI runs this folder under both)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import zmq

from tests.compat.harness import open_domain, replay_like_a_payload_test, text
from tests.conftest import XRD_CAPTURE, raw_xrd_events, xrd_images

STYLES = "tests.compat.styles"


def expected_sums(rows: int) -> dict[int, float]:
    return {n: float(img[:rows].sum()) for n, img in sorted(xrd_images().items())}


@pytest.mark.parametrize(
    "worker", ["ParamsContextKwWorker", "KwOnlyWorker", "StarArgsWorker", "DefaultParamsWorker"]
)
def test_worker_constructor_and_call_styles_publish_through_h5pyd(worker, h5pyd, tmp_path):
    params = tmp_path / "params.json"
    params.write_text(json.dumps([{"name": "rows", "data": "4"}]))
    expected = expected_sums(4)
    with replay_like_a_payload_test(
        f"{STYLES}:{worker}", f"{STYLES}:CollectingReducer", [XRD_CAPTURE], None, params
    ) as url:
        with open_domain(h5pyd, url) as f:
            events = f["map/events"][:].tolist()
            sums = f["map/sums"][:]
            assert sorted(events) == sorted(expected)
            got = dict(zip(events, sums.tolist()))
            assert got == expected
            assert text(f["map/sums"].attrs["units"]) == "counts"
            assert text(f["map/sums"].attrs["long_name"]) == "ROI"
            assert text(f["map"].attrs["NX_class"]) == "NXdata"
            table = f["table"][:]
            assert table.dtype.names == ("event", "sum")
            assert sorted(table["event"].tolist()) == sorted(expected)
            assert dict(zip(table["event"].tolist(), table["sum"].tolist())) == expected
            assert f["count"][()] == len(expected)
            assert f["ratio"][()] == pytest.approx(len(expected) / (len(expected) + 2))
            assert bool(f["finished"][()]) is True
            assert f["timer_calls"][()] >= 1
            assert "empty" in f
            assert f["empty"].shape in ((0,), None) or len(f["empty"].shape) == 1


def test_tick_flag_reaches_a_tick_keyword(tmp_path):
    from dranspose.replay import run_replay
    from tests.compat import styles

    class Reducer(styles.CollectingReducer):
        ticks: list[bool] = []

        def process_result(self, result, parameters=None):
            Reducer.ticks.append(result.payload.get("tick"))

    summary = run_replay(
        f"{STYLES}:KwOnlyWorker", Reducer, [XRD_CAPTURE], nworkers=1, show_progress=False
    )
    ticks = Reducer.ticks
    # every event got a bool; the first one True, then at most one per second (the default)
    assert len(ticks) == len(raw_xrd_events()) and all(type(t) is bool for t in ticks)
    assert ticks[0] is True
    assert sum(ticks) <= 1 + summary.seconds / 1.0


def test_worker_keeps_a_zmq_socket_in_context_and_republishes_frames(tmp_path):
    ctx = zmq.Context.instance()
    pull = ctx.socket(zmq.PULL)
    port = pull.bind_to_random_port("tcp://127.0.0.1")
    params = tmp_path / "p.json"
    params.write_text(json.dumps([{"name": "target", "data": f"tcp://127.0.0.1:{port}"}]))
    try:
        with replay_like_a_payload_test(
            f"{STYLES}:RepublishingWorker",
            f"{STYLES}:CountingReducer",
            [XRD_CAPTURE],
            None,
            params,
            nworkers=1,
        ) as url:
            import httpx

            events = httpx.get(f"{url}/api/v1/result/events").json()
        received = {}
        poller = zmq.Poller()
        poller.register(pull, zmq.POLLIN)
        while len(received) < len(raw_xrd_events()) and poller.poll(5000):
            number, *frames = pull.recv_multipart()
            received[int(number)] = frames
    finally:
        pull.close()
    raw = dict(raw_xrd_events())
    assert events == sorted(raw)
    assert received == raw


def test_source_messages_with_a_repeated_event_number_are_all_replayed():
    from tests.compat import styles

    with replay_like_a_payload_test(
        f"{STYLES}:StreamsWorker",
        f"{STYLES}:StreamsReducer",
        None,
        f"{STYLES}:MessageSource",
        None,
        nworkers=1,
    ):
        pass
    results = styles.StreamsReducer.last.results
    # event 2 of stream "a" came twice: two events, the first with b2 beside it, none lost
    assert [r["event"] for r in results] == [0, 1, 2, 2, 3]
    assert results[0]["streams"] == {"a": [b"a0"], "b": [b"b0"]}
    assert results[2]["streams"] == {"a": [b"a2"], "b": [b"b2"]}
    assert results[3]["streams"] == {"a": [b"a2"]}


def test_scalars_and_strings_read_back_with_h5pyd(h5pyd: Any, tmp_path):
    with replay_like_a_payload_test(
        f"{STYLES}:ParamsContextKwWorker", f"{STYLES}:CollectingReducer", [XRD_CAPTURE]
    ) as url:
        with open_domain(h5pyd, url) as f:
            header = json.loads(raw_xrd_events()[0][1][0])
            assert text(f["label"][()]) == str(header.get("filename"))
            assert np.issubdtype(f["count"].dtype, np.integer)

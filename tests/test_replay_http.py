"""The reducer API served during a replay (``--port``): publish data and live parameters."""

from __future__ import annotations

import pickle
import socket

import numpy as np
import pytest

from dranspose.tools.replay import replay
from tests.payloads.gated import GatedSource, PublishReducer, ScaleWorker


def test_publish_tree_is_served_as_json(live_replay):
    client, _ = live_replay
    tree = client.get("/api/v1/result/").json()
    # event 0 went to both workers; event 4 waits until the source yields the next event,
    # since only then is it known that no other partial of event 4 follows
    assert tree["values"] == [0, 0, 2, 4, 6]
    assert tree["image"] == [[0, 1, 2], [3, 4, 5]]
    assert tree["info"] == {"name": "demo", "ratio": 0.5, "missing": None}
    assert client.get("/api/v1/result/info/name").json() == "demo"
    assert client.get("/api/v1/result/image/1").json() == [3, 4, 5]


def test_unknown_publish_path_is_404(live_replay):
    client, _ = live_replay
    response = client.get("/api/v1/result/info/nope")
    assert response.status_code == 404
    assert "info/nope" in response.json()["detail"]


def test_publish_pickle_round_trips(live_replay):
    client, _ = live_replay
    tree = pickle.loads(client.get("/api/v1/result/pickle").content)
    np.testing.assert_array_equal(tree["image"], np.arange(6).reshape(2, 3))


def test_parameters_are_listed_with_types_and_values(live_replay):
    client, _ = live_replay
    listed = {p["name"]: p for p in client.get("/api/v1/parameters").json()}
    assert listed["scale"] == {
        "name": "scale",
        "dtype": "int",
        "description": "multiplier",
        "value": 2,
        "declared": True,
    }
    assert listed["threshold"]["value"] == 0.5
    assert client.get("/api/v1/parameter/scale").content == b"2"


def test_invalid_parameter_value_is_422_with_reason(live_replay):
    client, _ = live_replay
    response = client.post("/api/v1/parameter/scale", content=b"2.5")
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "'scale'" in detail and "2.5" in detail and "int" in detail
    assert client.get("/api/v1/parameter/scale").content == b"2"


def test_undeclared_parameter_is_kept_as_raw_bytes(live_replay):
    # as the original's replay: payloads read it as parameters["nope"].data
    client, _ = live_replay
    assert client.get("/api/v1/parameter/nope").status_code == 404
    response = client.post("/api/v1/parameter/nope?full=true", content=b"\x00raw")
    assert response.status_code == 200
    assert response.json()["declared"] is False and response.json()["dtype"] is None
    stored = client.get("/api/v1/parameter/nope")
    assert stored.content == b"\x00raw" and stored.headers["content-type"] == "application/x.bytes"


def test_parameter_change_applies_to_the_following_events(live_replay):
    client, done = live_replay
    response = client.post("/api/v1/parameter/scale", content=b"10")
    assert response.status_code == 200
    GatedSource.gate.set()
    assert done.wait(20)
    values = client.get("/api/v1/result/values").json()
    assert values == [0, 0, 2, 4, 6, 40, 50, 60, 70, 80, 90]
    status = client.get("/api/v1/status?full=true").json()
    assert status["events"] == 10 and status["failures"] == []


def test_results_carry_the_hash_of_their_parameters(live_replay):
    client, done = live_replay
    new_hash = client.post("/api/v1/parameter/scale", content=b"7").json()
    GatedSource.gate.set()
    assert done.wait(20)
    values = client.get("/api/v1/result/values").json()
    assert values[-1] == 9 * 7
    # hash differs before and after the change, and matches the value each result used
    hashes = {}
    for _number, scale, digest in _reducer_hashes(client):
        hashes.setdefault(scale, set()).add(digest)
    assert hashes[7] == {new_hash}
    assert len(hashes[2]) == 1 and hashes[2] != {new_hash}


def _reducer_hashes(client):
    return pickle.loads(client.get("/api/v1/result/pickle").content)["hash_log"]


@pytest.mark.expect_errors
def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(OSError, match=str(port)):
            replay(ScaleWorker, PublishReducer, None, GatedSource, None, port=port)


def test_replay_results_open_with_h5pyd(live_replay):
    h5pyd = pytest.importorskip("h5pyd")
    import logging

    client, _ = live_replay
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        with h5pyd.File(str(client.base_url).rstrip("/") + "/", "r", retries=1) as f:
            np.testing.assert_array_equal(f["image"][...], np.arange(6).reshape(2, 3))
            assert list(f["values"][...]) == [0, 0, 2, 4, 6]
            assert f["info/ratio"][()] == 0.5
    finally:  # h5pyd changes the root logger; give it back
        root.setLevel(level)
        root.handlers[:] = handlers

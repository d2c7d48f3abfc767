"""The reducer's h5grove endpoints (``/h5grove/...``) and the viewer's files (``/viewer/``).

A real reducer API (uvicorn in a thread) serves a ``publish`` tree of numpy values built here;
answers are compared with those arrays. The publish version is checked on a real replay.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest

from dranspose.core.parameters import ParameterSet
from dranspose.http.h5rest import GrowingBuffer
from dranspose.http.reducer_api import create_app
from dranspose.tools.serving import serve_in_thread
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
IMAGE = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 3
HALF = np.linspace(-1, 1, 7).astype(np.float16)
COUNTS = np.array([3, 1, 4, 1, 5], dtype=">u2")  # big-endian: must arrive little-endian


class _Payload:
    def __init__(self) -> None:
        self.publish_rlock = threading.RLock()
        growing = GrowingBuffer(np.float64)
        for i in range(5):
            growing[i] = i * 1.5
        self.publish: dict[Any, Any] = {
            "_attrs": {"NX_class": "NXroot", "default": "entry"},
            "image": IMAGE,
            "image_attrs": {"units": "counts", "gain": np.float32(2.5)},
            "half": HALF,
            "counts": COUNTS,
            "growing": growing,
            "title": "scan 7",
            "flags": np.array([True, False, True]),
            "entry": {
                "_attrs": {"NX_class": "NXdata", "signal": "y", "axes": ["x"]},
                "y": [1.0, 4.0, 9.0],
                "x": [1, 2, 3],
            },
            "ignored": None,
        }


class _Host:
    """The reducer API's host (see ReducerHost) around one payload instance."""

    component_name = "test"

    def __init__(self) -> None:
        self.reducer = _Payload()
        self.parameters = ParameterSet({}, {})
        self.calls = None

    def set_parameter(self, name: str, data: bytes) -> ParameterSet:
        raise KeyError(name)

    def status(self) -> dict[str, Any]:
        return {}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[httpx.Client, _Host]]:
    host = _Host()
    port = free_port()
    server = serve_in_thread(create_app(host), port=port)  # type: ignore[arg-type]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client, host
    server.stop()


@pytest.fixture
def client(served) -> httpx.Client:
    return served[0]


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 200, response.text
    return response


def _refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["message"] == body["detail"]
    for word in words:
        assert word in body["message"], body


def test_root_meta_lists_one_child_per_key_and_the_root_attributes(client):
    meta = _ok(client.get("/h5grove/meta/", params={"file": "x.h5", "path": "/"})).json()
    assert meta["kind"] == "group" and meta["name"] == ""
    names = [c["name"] for c in meta["children"]]
    assert names == ["image", "half", "counts", "growing", "title", "flags", "entry"]
    assert [a["name"] for a in meta["attributes"]] == ["NX_class", "default"]
    children = {c["name"]: c for c in meta["children"]}
    assert children["image"]["kind"] == "dataset"
    assert children["image"]["shape"] == [3, 4]
    assert children["image"]["type"]["dtype"] == "<f4"
    assert children["counts"]["type"] == {
        "class": 0,
        "dtype": "<u2",
        "size": 2,
        "order": 0,
        "sign": 0,
    }
    assert children["growing"]["shape"] == [5]
    assert children["title"]["shape"] == [] and children["title"]["type"]["vlen"] is True
    assert children["flags"]["type"]["members"] == {"FALSE": 0, "TRUE": 1}
    assert children["entry"]["kind"] == "group" and "children" not in children["entry"]
    assert [a["name"] for a in children["image"]["attributes"]] == ["units", "gain"]
    # H5Web asks without the trailing slash: the same answer, no redirect
    assert _ok(client.get("/h5grove/meta", params={"path": "/"})).json() == meta


def test_group_meta_and_attributes_of_a_nexus_group(client):
    meta = _ok(client.get("/h5grove/meta/", params={"path": "/entry"})).json()
    assert [c["name"] for c in meta["children"]] == ["y", "x"]
    attrs = _ok(client.get("/h5grove/attr/", params={"path": "/entry"})).json()
    assert attrs == {"NX_class": "NXdata", "signal": "y", "axes": ["x"]}


def test_dataset_attributes_by_the_attrs_convention(client):
    attrs = _ok(client.get("/h5grove/attr", params={"path": "/image"})).json()
    assert attrs == {"units": "counts", "gain": 2.5}
    only = client.get("/h5grove/attr/", params=[("path", "/image"), ("attr_keys", "gain")])
    assert _ok(only).json() == {"gain": 2.5}
    _refused(
        client.get("/h5grove/attr/", params=[("path", "/image"), ("attr_keys", "nope")]),
        404,
        "nope",
    )


def test_data_as_json_bin_and_npy_equal_the_published_arrays(client):
    got = _ok(client.get("/h5grove/data/", params={"path": "/image"})).json()
    np.testing.assert_allclose(np.array(got, dtype=np.float32), IMAGE)
    raw = _ok(client.get("/h5grove/data/", params={"path": "/image", "format": "bin"}))
    assert raw.headers["content-type"] == "application/octet-stream"
    np.testing.assert_array_equal(np.frombuffer(raw.content, "<f4").reshape(3, 4), IMAGE)
    npy = _ok(client.get("/h5grove/data/", params={"path": "/counts", "format": "npy"}))
    loaded = np.load(io.BytesIO(npy.content))
    assert loaded.dtype == np.dtype("<u2")
    np.testing.assert_array_equal(loaded, COUNTS)
    growing = _ok(client.get("/h5grove/data", params={"path": "/growing", "format": "bin"}))
    np.testing.assert_array_equal(np.frombuffer(growing.content, "<f8"), np.arange(5) * 1.5)
    assert _ok(client.get("/h5grove/data/", params={"path": "/title"})).json() == "scan 7"
    assert _ok(client.get("/h5grove/data/", params={"path": "/flags"})).json() == [
        True,
        False,
        True,
    ]


def test_numpy_style_selections_flatten_and_safe_dtype(client):
    def data(**params: str) -> httpx.Response:
        return _ok(client.get("/h5grove/data/", params={"path": "/image", **params}))

    np.testing.assert_allclose(data(selection="1,:").json(), IMAGE[1, :], rtol=1e-6)
    np.testing.assert_allclose(data(selection="0:3:2, 1").json(), IMAGE[0:3:2, 1], rtol=1e-6)
    np.testing.assert_allclose(data(selection="-1").json(), IMAGE[-1], rtol=1e-6)
    np.testing.assert_allclose(data(selection=":, 2:").json(), IMAGE[:, 2:], rtol=1e-6)
    flat = data(format="bin", flatten="true", selection="1:3,1:3")
    np.testing.assert_array_equal(np.frombuffer(flat.content, "<f4"), IMAGE[1:3, 1:3].ravel())
    half = _ok(
        client.get("/h5grove/data/", params={"path": "/half", "format": "bin", "dtype": "safe"})
    )
    np.testing.assert_array_equal(np.frombuffer(half.content, "<f4"), HALF.astype(np.float32))
    stats = _ok(client.get("/h5grove/stats/", params={"path": "/image"})).json()
    assert stats["min"] == pytest.approx(float(IMAGE.min()))
    assert stats["max"] == pytest.approx(float(IMAGE.max()))
    assert stats["strict_positive_min"] == pytest.approx(float(IMAGE[IMAGE > 0].min()))


def test_paths_lists_every_member_depth_first(client):
    paths = _ok(client.get("/h5grove/paths/", params={"path": "/"})).json()
    assert paths == [
        "/",
        "/image",
        "/half",
        "/counts",
        "/growing",
        "/title",
        "/flags",
        "/entry",
        "/entry/y",
        "/entry/x",
    ]
    assert _ok(client.get("/h5grove/paths", params={"path": "/entry"})).json() == [
        "/entry",
        "/entry/y",
        "/entry/x",
    ]


@pytest.mark.parametrize(
    "url, params, status, words",
    [
        ("meta", {"path": "/nope"}, 404, ["/nope", "not a valid path"]),
        ("meta", {"path": "/image_attrs"}, 404, ["/image_attrs"]),
        ("meta", {"path": "/ignored"}, 404, ["/ignored"]),
        ("data", {"path": "/image/deeper"}, 404, ["/image/deeper"]),
        ("data", {"path": "/entry"}, 422, ["not a dataset"]),
        ("data", {"path": "/image", "selection": "a:b"}, 422, ["bad selection"]),
        ("data", {"path": "/image", "selection": "0,0,0"}, 422, ["3 members", "2 dims"]),
        ("data", {"path": "/image", "selection": "3"}, 422, ["index 3", "extent 3"]),
        ("data", {"path": "/image", "selection": "::0"}, 422, ["step 0"]),
        ("data", {"path": "/image", "selection": "1:2:3:4"}, 422, ["bad selection"]),
        ("data", {"path": "/title", "selection": "0"}, 422, ["0 dims"]),
        ("data", {"path": "/image", "format": "gif"}, 422, ["gif"]),
        ("data", {"path": "/title", "dtype": "safe"}, 422, ["non-numeric"]),
        ("data", {"path": "/image", "dtype": "weird"}, 422, ["weird"]),
        ("stats", {"path": "/title"}, 422, ["numeric"]),
        ("paths", {"path": "/image"}, 422, ["not a group"]),
    ],
)
def test_errors_answer_4xx_with_a_message(client, url, params, status, words):
    _refused(client.get(f"/h5grove/{url}/", params=params), status, *words)


def test_reading_waits_for_the_publish_lock(served):
    client, host = served
    answered = threading.Event()

    def read() -> None:
        _ok(client.get("/h5grove/data/", params={"path": "/image"}))
        answered.set()

    with host.reducer.publish_rlock:
        reader = threading.Thread(target=read)
        reader.start()
        assert not answered.wait(0.5), "a read did not wait for the publish lock"
    assert answered.wait(10)
    reader.join()


def test_a_grown_dataset_is_read_with_its_new_length(served):
    client, host = served
    buf = host.reducer.publish["growing"]
    with host.reducer.publish_rlock:
        buf[7] = 99.0
    try:
        meta = _ok(client.get("/h5grove/meta/", params={"path": "/growing"})).json()
        assert meta["shape"] == [8]
        raw = _ok(client.get("/h5grove/data/", params={"path": "/growing", "format": "bin"}))
        expected = np.array([0, 1.5, 3, 4.5, 6, np.nan, np.nan, 99.0])
        np.testing.assert_array_equal(np.frombuffer(raw.content, "<f8"), expected)
    finally:
        with host.reducer.publish_rlock:
            buf.clear()
            for i in range(5):
                buf[i] = i * 1.5


def test_publish_version_moves_only_when_the_reducer_ran(live_replay):
    client, done = live_replay
    from tests.payloads.gated import GatedSource

    first = _ok(client.get("/h5grove/version")).json()["version"]
    time.sleep(0.3)
    assert _ok(client.get("/h5grove/version")).json()["version"] == first  # held at event 5
    values = _ok(client.get("/h5grove/data/", params={"path": "/values"})).json()
    assert values == client.get("/api/v1/result/values").json()
    GatedSource.gate.set()
    assert done.wait(20)
    after = _ok(client.get("/h5grove/version")).json()["version"]
    assert after != first
    # the same scan's calls: the 6 results not folded yet (event 0 went to both workers) and
    # finish; PublishReducer has no timer
    (serial, before), (serial_after, count) = first.split("."), after.split(".")
    assert serial_after == serial and int(count) - int(before) == 7
    grown = _ok(client.get("/h5grove/meta/", params={"path": "/values"})).json()
    assert grown["shape"] == [len(values) + 6]


def test_viewer_page_and_assets_are_served(client):
    redirect = client.get("/viewer")
    assert redirect.status_code == 307 and redirect.headers["location"] == "viewer/"
    page = _ok(client.get("/viewer/"))
    assert page.headers["content-type"].startswith("text/html")
    assets = [part.split('"')[0] for part in page.text.split('="./')[1:]]
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        response = _ok(client.get(f"/viewer/{asset}"))
        assert "immutable" in response.headers["cache-control"]
        assert response.headers["content-type"].split(";")[0] in (
            "text/javascript",
            "text/css",
        )
    assert client.get("/viewer/nothing.js").status_code == 404
    assert client.get("/viewer/assets%2F..%2F..%2Fhttp%2Fviewer.py").status_code == 404


def test_viewer_bundle_stays_within_its_size_budget():
    built = [p for p in (ROOT / "dranspose" / "viewer").rglob("*") if p.is_file()]
    assert built, "dranspose/viewer is empty: build it (npm ci && npm run build in frontend/viewer)"
    assert sum(p.stat().st_size for p in built) < 3_000_000

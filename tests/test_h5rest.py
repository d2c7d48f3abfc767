"""dranspose.http.h5rest: the publish tree as an HDF5 domain, read with the real h5pyd client.

A real uvicorn server runs the router in a background thread and serves ``STATE["tree"]``,
which the tests replace or mutate under ``LOCK``. The h5pyd tests skip when h5pyd is not
installed; they pass with h5pyd 0.18 and with 1.x (which differ in what they cache, see
``reread`` below).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Iterator

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI

from dranspose.http.h5rest import MAX_SELECTION_BYTES, GrowingBuffer, create_h5_router
from dranspose.io.http_server import EmbeddedServer

LOCK = threading.RLock()
STATE: dict[str, Any] = {"tree": {}}
OCTET = {"Accept": "application/octet-stream"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread; yields its base URL."""
    port = _free_port()
    server = EmbeddedServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = FastAPI()
    app.include_router(create_h5_router(lambda: STATE["tree"], lambda: LOCK))
    with serve(app) as base:
        yield base


def publish(tree: dict[str, Any]) -> None:
    with LOCK:
        STATE["tree"] = tree


@pytest.fixture(scope="module")
def client(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url) as http:
        yield http


def h5pyd_major(h5pyd: Any) -> int:
    return int(h5pyd.version.version.split(".")[0])


def open_file(h5pyd: Any, url: str, live: bool = True) -> Any:
    """Open the domain as scientists do; ``live`` turns h5pyd 0.x's metadata cache off, so
    re-read shapes and links are current (h5pyd 1.x has no such switch: see ``reread``)."""
    if live and h5pyd_major(h5pyd) < 1:
        return h5pyd.File(url + "/", "r", use_cache=False, retries=1)
    return h5pyd.File(url + "/", "r", retries=1)


def reread(h5pyd: Any, dset: Any) -> tuple[int, ...]:
    """The dataset's current shape from the server (how each client re-reads it)."""
    if h5pyd_major(h5pyd) >= 1:
        dset.refresh()  # h5pyd 1.x keeps object JSON until refresh()
        return dset.shape
    return dset.get_shape(check_server=True)  # h5pyd 0.x re-reads /shape


def as_str(value: Any) -> Any:
    """h5pyd returns variable-length strings as bytes, like h5py."""
    if isinstance(value, np.ndarray):
        return np.vectorize(as_str, otypes=[object])(value) if value.size else value
    return value.decode("utf-8") if isinstance(value, bytes) else value


def ids(client: httpx.Client) -> dict[str, str]:
    """Member name -> id of the root group."""
    root = client.get("/").json()["root"]
    links = client.get(f"/groups/{root}/links").json()["links"]
    return {link["title"]: link["id"] for link in links}


def value(client: httpx.Client, obj_id: str, select: str) -> Any:
    """The JSON value of a selection."""
    r = client.get(f"/datasets/{obj_id}/value", params={"select": select})
    assert r.status_code == 200, r.text
    return r.json()["value"]


# --------------------------------------------------------------------------- h5pyd


def test_groups_nested_groups_and_member_order(url: str, h5pyd: Any) -> None:
    publish(
        {
            "zeta": {"inner": {"leaf": np.arange(3)}, "b": 1.0, "a": 2.0},
            "alpha": np.zeros(2),
            "mid": {},
            7: "non-string key",
            "skipped": None,
            "bad/name": 1,
        }
    )
    with open_file(h5pyd, url) as f:
        assert list(f.keys()) == ["zeta", "alpha", "mid", "7"]  # insertion order
        assert list(f["zeta"].keys()) == ["inner", "b", "a"]
        assert isinstance(f["zeta"], h5pyd.Group) and isinstance(f["alpha"], h5pyd.Dataset)
        assert isinstance(f["zeta/inner"], h5pyd.Group)
        assert f["zeta/inner/leaf"][:].tolist() == [0, 1, 2]
        assert f["zeta"]["inner"]["leaf"].name == "/zeta/inner/leaf"
        assert len(f["mid"]) == 0 and len(f) == 4
        assert "zeta" in f and "nope" not in f and "skipped" not in f
        assert as_str(f["7"][()]) == "non-string key"
        visited: list[str] = []
        f.visit(lambda name: visited.append(name))  # h5pyd 0.18 needs a Python function
        assert set(visited) == {
            "zeta",
            "zeta/inner",
            "zeta/inner/leaf",
            "zeta/b",
            "zeta/a",
            "alpha",
            "mid",
            "7",
        }


def test_numeric_datasets_1d_2d_3d(url: str, h5pyd: Any) -> None:
    tree = {
        "i32": np.arange(-5, 5, dtype=np.int32),
        "f64": np.linspace(0.0, 1.0, 12).reshape(3, 4),
        "flags": np.array([[True, False, True], [False, False, True]]),
        "u16": np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4) * 1000,
        "f32be": np.arange(6, dtype=">f4"),
        "i8": np.array([-128, 0, 127], dtype=np.int8),
        "u64": np.array([0, 2**64 - 1], dtype=np.uint64),
        "f16": np.array([0.5, -2.0], dtype=np.float16),
        "ints_list": [1, 2, 3],
        "floats_list": [[1.5, 2.5], [3.5, np.nan]],
        "bools_list": [True, False],
        "empty": np.zeros((0, 3)),
    }
    publish(tree)
    with open_file(h5pyd, url, live=False) as f:  # h5pyd's default settings
        for name, data in tree.items():
            expected = np.asarray(data)
            dset = f[name]
            assert dset.shape == expected.shape, name
            assert dset.dtype == expected.dtype.newbyteorder("<"), name
            got = dset[...] if expected.size else np.zeros(dset.shape, dset.dtype)
            np.testing.assert_array_equal(got, expected, err_msg=name)
        assert f["f64"].maxshape == (None, None)
        assert f["u16"].chunks is not None


def test_slices_with_steps_and_indices(url: str, h5pyd: Any) -> None:
    a1 = np.arange(50, dtype=np.int64) * 3
    a2 = np.arange(20 * 30, dtype=np.float64).reshape(20, 30)
    a3 = np.arange(4 * 5 * 6, dtype=np.uint16).reshape(4, 5, 6)
    publish({"a1": a1, "a2": a2, "a3": a3})
    with open_file(h5pyd, url) as f:
        d1, d2, d3 = f["a1"], f["a2"], f["a3"]
        for key in [slice(None), slice(3, 40, 7), slice(0, 50, 49), slice(10, 11), slice(5, None)]:
            np.testing.assert_array_equal(d1[key], a1[key], err_msg=str(key))
        assert d1[17] == a1[17]
        for key in [
            (slice(1, 19, 3), slice(None, None, 4)),
            (5, slice(None)),
            (slice(None), 7),
            (slice(2, 3), slice(10, 20, 5)),
            (19, 29),
        ]:
            np.testing.assert_array_equal(d2[key], a2[key], err_msg=str(key))
        for key in [
            (slice(None, None, 2), slice(1, 5, 2), slice(0, 6, 5)),
            (1, slice(None), slice(2, 4)),
            (slice(None), 4, 5),
            Ellipsis,
        ]:
            np.testing.assert_array_equal(d3[key], a3[key], err_msg=str(key))
        # a coordinate list in one dimension, and a point selection
        np.testing.assert_array_equal(d2[3, [1, 5, 7]], a2[3, [1, 5, 7]])
        np.testing.assert_array_equal(d1[[1, 5, 7]], a1[[1, 5, 7]])


def test_strings(url: str, h5pyd: Any) -> None:
    publish(
        {
            "title": "hello world",
            "unicode": "Ångström λ=1.5 Å ✓",
            "names": ["a", "bb", "", "dddd"],
            "grid": np.array([["x", "yy"], ["zzz", "Å"]]),
            "raw": b"fixed",
        }
    )
    with open_file(h5pyd, url) as f:
        assert as_str(f["title"][()]) == "hello world"
        assert as_str(f["unicode"][()]) == "Ångström λ=1.5 Å ✓"
        assert f["title"].shape == ()
        assert h5pyd.check_dtype(vlen=f["names"].dtype) is str
        assert as_str(f["names"][:]).tolist() == ["a", "bb", "", "dddd"]
        assert as_str(f["names"][1:4:2]).tolist() == ["bb", "dddd"]
        assert as_str(f["grid"][:]).tolist() == [["x", "yy"], ["zzz", "Å"]]
        assert as_str(f["grid"][1]).tolist() == ["zzz", "Å"]  # a row: dimension dropped
        assert as_str(f["grid"][:, 1]).tolist() == ["yy", "Å"]
        assert f["raw"][()] == b"fixed"


def test_attributes_by_convention(url: str, h5pyd: Any) -> None:
    publish(
        {
            "_attrs": {"NX_class": "NXroot", "n": 3},
            "image": np.zeros((2, 2), np.uint16),
            "image_attrs": {
                "units": "counts",
                "scale": 2.5,
                "axes": ["y", "x"],
                "v": [1, 2, 3],
                "flag": True,
                "skip_dict": {"a": 1},
                "skip_none": None,
            },
            "entry": {"_attrs": {"NX_class": "NXentry", "who": "inner"}, "x": 1},
            "entry_attrs": {"who": "sibling", "extra": np.float32(0.5)},
            "orphan_attrs": {"not": "attributes"},
        }
    )
    with open_file(h5pyd, url) as f:
        assert list(f.keys()) == ["image", "entry", "orphan_attrs"]  # *_attrs of members hidden
        assert as_str(f.attrs["NX_class"]) == "NXroot" and f.attrs["n"] == 3
        attrs = f["image"].attrs
        assert sorted(attrs.keys()) == ["axes", "flag", "scale", "units", "v"]
        assert as_str(attrs["units"]) == "counts"
        assert attrs["scale"] == 2.5
        assert as_str(attrs["axes"]).tolist() == ["y", "x"]
        assert attrs["v"].tolist() == [1, 2, 3]
        assert bool(attrs["flag"]) is True
        assert "units" in attrs and "skip_dict" not in attrs
        entry = f["entry"].attrs
        assert as_str(entry["NX_class"]) == "NXentry"
        assert as_str(entry["who"]) == "sibling"  # the sibling <name>_attrs wins
        assert entry["extra"] == np.float32(0.5) and entry["extra"].dtype == np.float32
        assert list(f["entry"].keys()) == ["x"]
        assert isinstance(f["orphan_attrs"], h5pyd.Group)


def test_scalars(url: str, h5pyd: Any) -> None:
    tree = {
        "i": 42,
        "f": 1.25,
        "b": True,
        "n32": np.float32(3.5),
        "u8": np.uint8(200),
        "nan": float("nan"),
        "c": 1 + 2j,
    }
    publish(tree)
    with open_file(h5pyd, url) as f:
        for name in ("i", "f", "b", "n32", "u8"):
            dset = f[name]
            assert dset.shape == () and dset.maxshape == ()
            assert dset[()] == tree[name] and dset.dtype == np.asarray(tree[name]).dtype, name
        assert np.isnan(f["nan"][()])
        c = f["c"][()]
        assert complex(c) == 1 + 2j if np.iscomplexobj(c) else (c["r"], c["i"]) == (1.0, 2.0)


def test_dataset_growing_between_reads(url: str, h5pyd: Any) -> None:
    tree = {"grow": np.arange(3.0), "img": np.zeros((2, 4), np.int32)}
    publish(tree)
    with open_file(h5pyd, url) as f:
        grow = f["grow"]
        assert grow.shape == (3,) and grow.maxshape == (None,)
        np.testing.assert_array_equal(grow[:], [0.0, 1.0, 2.0])
        with LOCK:
            tree["grow"] = np.arange(7.0)
            tree["img"] = np.ones((5, 4), np.int32)
            tree["late"] = "new member"
        assert reread(h5pyd, grow) == (7,)
        np.testing.assert_array_equal(grow[:], np.arange(7.0))
        img = f["img"]
        reread(h5pyd, img)
        np.testing.assert_array_equal(img[:], np.ones((5, 4)))
    with open_file(h5pyd, url) as f:  # a new file sees everything
        assert "late" in f and f["grow"].shape == (7,)


def test_concurrent_writer_never_tears_an_array(url: str, h5pyd: Any) -> None:
    """The writer fills arrays with one value under the lock; every read must be uniform."""
    live = np.zeros((256, 512))
    tree = {"live": live, "swapped": np.zeros(10000, np.int64)}
    publish(tree)
    stop = threading.Event()

    def writer() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            with LOCK:
                for start in range(0, len(live), 32):  # in place, in steps, like a payload
                    live[start : start + 32] = k  # a reader without the lock sees mixtures
                tree["swapped"] = np.full(10000, k, np.int64)
            time.sleep(0.0002)  # let readers at the lock (it is not fair)

    thread = threading.Thread(target=writer, daemon=True)
    seen: set[float] = set()
    with open_file(h5pyd, url) as f:
        dset, swapped = f["live"], f["swapped"]
        thread.start()
        try:
            for _ in range(40):
                arr = dset[:]
                assert arr.min() == arr.max(), "torn read"
                seen.add(float(arr[0, 0]))
                part = dset[10:200:3, ::7]
                assert part.min() == part.max(), "torn read"
                other = swapped[:]
                assert other.min() == other.max(), "torn read"
        finally:
            stop.set()
            thread.join(10)
    assert len(seen) > 5, "the writer did not run concurrently"


def test_growing_buffer_served(url: str, h5pyd: Any) -> None:
    buf = GrowingBuffer(np.float64)
    rows = GrowingBuffer(np.int32, row_shape=(3,))
    buf[4] = 4.0
    buf[1] = 1.0
    rows[2] = [7, 8, 9]
    tree = {"buf": buf, "rows": rows}
    publish(tree)
    with open_file(h5pyd, url) as f:
        dset = f["buf"]
        assert dset.shape == (5,) and dset.maxshape == (None,)
        np.testing.assert_array_equal(dset[:], [np.nan, 1.0, np.nan, np.nan, 4.0])
        assert np.isnan(dset.fillvalue)
        np.testing.assert_array_equal(f["rows"][:], [[0, 0, 0], [0, 0, 0], [7, 8, 9]])
        with LOCK:
            buf[9] = 9.0
            buf[0] = 0.0
        assert reread(h5pyd, dset) == (10,)
        got = dset[:]
        np.testing.assert_array_equal(got[[0, 1, 4, 9]], [0.0, 1.0, 4.0, 9.0])
        assert np.isnan(got[[2, 3, 5, 6, 7, 8]]).all()


def test_structured_and_complex(url: str, h5pyd: Any) -> None:
    rec = np.array(
        [(1, 2.5, b"ab"), (3, 4.5, b"cd")], dtype=[("n", "<i4"), ("x", ">f8"), ("s", "S2")]
    )
    aligned = np.zeros(2, dtype=np.dtype([("a", "u1"), ("b", "<f8")], align=True))
    aligned["a"], aligned["b"] = [1, 2], [0.5, 1.5]
    publish({"rec": rec, "aligned": aligned, "cplx": np.array([1 + 2j, 3 - 4j])})
    with open_file(h5pyd, url) as f:
        got = f["rec"][:]
        assert got["n"].tolist() == [1, 3] and got["x"].tolist() == [2.5, 4.5]
        assert got["s"].tolist() == [b"ab", b"cd"]
        got = f["aligned"][:]  # padding dropped on the wire
        assert got["a"].tolist() == [1, 2] and got["b"].tolist() == [0.5, 1.5]
        cplx = f["cplx"][:]
        if cplx.dtype.names:  # h5pyd 1.x datasets keep h5py's r/i compound
            cplx = cplx["r"] + 1j * cplx["i"]
        np.testing.assert_array_equal(cplx, [1 + 2j, 3 - 4j])


# --------------------------------------------------------------------------- GrowingBuffer


def test_growing_buffer_out_of_order() -> None:
    buf = GrowingBuffer(np.float64, capacity=2)
    assert len(buf) == 0 and buf.shape == (0,) and np.asarray(buf).shape == (0,)
    for index in [5, 0, 3, 17, 2]:
        buf[index] = index * 10.0
    assert buf.shape == (18,) and len(buf) == 18
    arr = np.asarray(buf)
    np.testing.assert_array_equal(arr[[0, 2, 3, 5, 17]], [0.0, 20.0, 30.0, 50.0, 170.0])
    assert np.isnan(arr[[1, 4, 6, 16]]).all()
    assert buf[17] == 170.0 and buf.fill_value != buf.fill_value  # NaN
    buf[3] = -1.0  # overwrite
    assert buf.array[3] == -1.0

    ints = GrowingBuffer(np.int64)
    for index in range(1000, -1, -1):  # backwards: one growth, then no copies
        ints[index] = index
    np.testing.assert_array_equal(ints.array, np.arange(1001))
    appended = GrowingBuffer(np.uint16)
    capacities = set()
    for index in range(5000):
        appended[index] = index % 7
        capacities.add(appended.capacity)
    assert appended.capacity < 2 * 5000 and len(capacities) < 15  # doubling

    rows = GrowingBuffer("u1", row_shape=(2, 3))
    rows[1] = np.ones((2, 3))
    assert rows.shape == (2, 2, 3) and rows.ndim == 3 and rows.dtype == np.uint8
    assert rows.array[0].tolist() == [[0, 0, 0], [0, 0, 0]]
    rows[3:5] = 7
    assert rows.shape == (5, 2, 3) and (rows.array[3:5] == 7).all()
    assert np.asarray(rows, dtype=np.float32).dtype == np.float32

    flags = GrowingBuffer(bool)
    flags[2] = True
    assert flags.array.tolist() == [False, False, True]
    custom = GrowingBuffer(np.int32, fill_value=-1)
    custom[2] = 5
    assert custom.array.tolist() == [-1, -1, 5]
    with pytest.raises(IndexError):
        custom[-1] = 3
    custom.clear()
    assert len(custom) == 0
    custom[0] = 1
    assert custom.array.tolist() == [1]


# --------------------------------------------------------------------------- plain HTTP


def test_http_domain_links_and_ids(client: httpx.Client) -> None:
    publish({"b": {"x": 1}, "a": np.arange(4), "a_attrs": {"u": "mm"}})
    domain = client.get("/", params={"domain": "/"}).json()
    assert domain["class"] == "domain" and {"created", "lastModified"} <= domain.keys()
    assert client.get("/about").json()["state"] == "READY"
    root = domain["root"]
    assert root.startswith("g-") and len(root) == 38 and root.count("-") == 5  # UUID-like
    group = client.get(f"/groups/{root}", params={"include_links": 1, "include_attrs": 1}).json()
    assert group["id"] == root and group["linkCount"] == 2 and list(group["links"]) == ["b", "a"]
    assert group["creationProperties"] == {"CreateOrder": 1}

    links = client.get(f"/groups/{root}/links").json()["links"]
    assert [(link["title"], link["collection"]) for link in links] == [
        ("b", "groups"),
        ("a", "datasets"),
    ]
    assert links[0]["id"].startswith("g-") and links[1]["id"].startswith("d-")
    assert links[0]["created"] < links[1]["created"]  # creation order is insertion order

    def titles(response: httpx.Response) -> list[str]:
        return [link["title"] for link in response.json()["links"]]

    assert titles(client.get(f"/groups/{root}/links", params={"Limit": 1})) == ["b"]
    assert titles(client.get(f"/groups/{root}/links", params={"Marker": "b"})) == ["a"]
    assert titles(client.get(f"/groups/{root}/links", params={"pattern": "a*"})) == ["a"]
    assert titles(client.post(f"/groups/{root}/links", json={"titles": ["a"]})) == ["a"]
    link = client.get(f"/groups/{root}/links/a").json()["link"]
    assert link["id"] == links[1]["id"]

    dset_id = link["id"]
    dset = client.get(f"/datasets/{dset_id}").json()
    assert dset["shape"] == {"class": "H5S_SIMPLE", "dims": [4], "maxdims": [0]}
    assert dset["type"] == {"class": "H5T_INTEGER", "base": "H5T_STD_I64LE"}
    assert dset["attributeCount"] == 1
    assert client.get(f"/datasets/{dset_id}/shape").json()["shape"]["dims"] == [4]
    assert client.get(f"/datasets/{dset_id}/type").json()["type"] == dset["type"]
    attrs = client.get(f"/datasets/{dset_id}/attributes").json()["attributes"]
    assert [(a["name"], a["value"]) for a in attrs] == [("u", "mm")]
    attr = client.get(f"/datasets/{dset_id}/attributes/u").json()
    assert attr["type"]["class"] == "H5T_STRING" and attr["shape"] == {"class": "H5S_SCALAR"}
    posted = client.post(f"/datasets/{dset_id}/attributes", json={"attr_names": ["u"]})
    assert posted.json()["attributes"][0]["value"] == "mm"
    assert client.get(f"/datasets/{dset_id}", params={"getalias": 1}).json()["alias"] == ["/a"]

    # ids come from the path: still valid after the tree is replaced
    publish({"b": {"y": 2}, "a": np.arange(9)})
    assert ids(client)["a"] == dset_id
    assert client.get(f"/datasets/{dset_id}/shape").json()["shape"]["dims"] == [9]


def test_http_values_binary_and_json(client: httpx.Client) -> None:
    a = np.arange(24, dtype=np.int16).reshape(4, 6)
    publish({"a": a, "f": np.array([1.0, np.nan, np.inf]), "s": ["x", "Å"], "t": "scalar"})
    member = ids(client)
    url_a = f"/datasets/{member['a']}/value"
    r = client.get(url_a, params={"select": "[1:4:2,0:6:3]"}, headers=OCTET)
    assert r.headers["content-type"] == "application/octet-stream"
    np.testing.assert_array_equal(np.frombuffer(r.content, "<i2").reshape(2, 2), a[1:4:2, 0:6:3])
    r = client.get(url_a, params={"select": "[1:4:2,0:6:3]"})
    assert r.headers["content-type"] == "application/json"
    assert r.json()["value"] == a[1:4:2, 0:6:3].tolist()
    # open ranges, a single index (its dimension dropped) and a coordinate list
    assert value(client, member["a"], "[:2,4:]") == a[:2, 4:].tolist()
    assert value(client, member["a"], "[ 2 , 1:3 ]") == a[2, 1:3].tolist()
    assert value(client, member["a"], "[0:4,[1,5,3]]") == a[:, [1, 5, 3]].tolist()
    # point selections: JSON or binary uint64 coordinates
    assert client.post(url_a, json={"points": [[0, 1], [3, 5]]}).json()["value"] == [1, 23]
    r = client.post(
        url_a,
        content=np.array([[2, 2], [1, 0]], "<u8").tobytes(),
        headers={"Content-Type": "application/octet-stream", **OCTET},
    )
    assert np.frombuffer(r.content, "<i2").tolist() == [14, 6]
    assert client.post(url_a, json={"select": "[3,0:2]"}).json()["value"] == [18, 19]
    # NaN and infinities as Python's json writes them (what h5pyd reads)
    assert client.get(f"/datasets/{member['f']}/value").text.count("NaN") == 1
    # variable-length strings: JSON, or the HDF REST length-prefixed binary form
    assert value(client, member["s"], "[0:2]") == ["x", "Å"]
    raw = client.get(f"/datasets/{member['s']}/value", headers=OCTET).content
    assert raw == b"\x01\x00\x00\x00x" + b"\x02\x00\x00\x00" + "Å".encode()
    assert client.get(f"/datasets/{member['t']}/value").json()["value"] == "scalar"


def test_http_select_of_a_3d_dataset_and_a_scalar(client: httpx.Client) -> None:
    """The selections H5Web's HsdsProvider and other HSDS clients send, as the issue lists them."""
    cube = np.arange(4 * 12 * 6, dtype="<f4").reshape(4, 12, 6)
    publish({"cube": cube, "two": cube[0], "scalar": 5})
    member = ids(client)
    assert value(client, member["cube"], "[0,:,:]") == cube[0].tolist()
    assert value(client, member["two"], "[2:10:2,5]") == cube[0][2:10:2, 5].tolist()
    r = client.get(f"/datasets/{member['scalar']}/value", params={"select": "[0]"})
    assert r.status_code == 400 and "scalar dataset" in r.json()["detail"]
    assert client.get(f"/datasets/{member['scalar']}/value").json()["value"] == 5


@pytest.mark.parametrize(
    "select, reason",
    [
        ("0:3", "must look like"),
        ("[0:3]", "has 1 dimensions, the dataset has 2"),
        ("[0:3,0:3,0:3]", "has 3 dimensions"),
        ("[0:5,0:2]", "out of range"),
        ("[-1:2,0:2]", "negative"),
        ("[0:2:0,0:2]", "at least 1"),
        ("[0:2:-1,0:2]", "negative"),
        ("[3:1,0:2]", "out of range"),
        ("[a:b,0:2]", "not an integer"),
        ("[0:1:2:3,0:2]", "more than start:stop:step"),
        ("[[0,1],[0,1]]", "only one coordinate list"),
        ("[[0,9],0:2]", "out of range"),
        ("[[],0:2]", "malformed"),
        ("[[0,1,0:2]", "unbalanced"),
        ("[7,0]", "out of range"),
    ],
)
def test_http_bad_select_is_400(client: httpx.Client, select: str, reason: str) -> None:
    publish({"a": np.zeros((4, 3))})
    r = client.get(f"/datasets/{ids(client)['a']}/value", params={"select": select}, headers=OCTET)
    assert r.status_code == 400, r.text
    assert reason in r.json()["detail"]


def test_http_errors_404_400_413(client: httpx.Client) -> None:
    huge = np.broadcast_to(np.zeros(1), (MAX_SELECTION_BYTES // 8 + 1,))  # no memory behind it
    publish({"a": np.arange(5), "g": {}, "huge": huge})
    member = ids(client)
    unknown = "d-00000000-0000-0000-0000-000000000000"
    for path in (
        f"/datasets/{unknown}",
        f"/datasets/{unknown}/value",
        "/datasets/not-an-id",
        f"/groups/{member['a']}",  # a dataset id is no group id
        f"/datasets/{member['g']}/shape",
        f"/groups/{member['g']}/links/missing",
        f"/datasets/{member['a']}/attributes/missing",
        "/datatypes/t-00000000-0000-0000-0000-000000000000",
    ):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["detail"], path
    r = client.get(f"/groups/{member['g']}/links/missing")
    assert "has no member 'missing'" in r.json()["detail"]
    # a removed member: its id no longer resolves
    publish({"g": {}, "huge": huge})
    assert client.get(f"/datasets/{member['a']}").status_code == 404

    # too large: 413 naming the limit; a slice of it is fine
    url_huge = f"/datasets/{member['huge']}/value"
    r = client.get(url_huge, headers=OCTET)
    assert r.status_code == 413 and str(MAX_SELECTION_BYTES) in r.json()["detail"]
    r = client.get(url_huge, params={"select": "[0:1000]"}, headers=OCTET)
    assert r.content == bytes(8000)

    # bad point selections and bodies, unsupported queries
    assert client.post(url_huge, json={"points": [[-1]]}).status_code == 400
    binary = {"Content-Type": "application/octet-stream"}
    assert client.post(url_huge, content=b"123", headers=binary).status_code == 400
    assert client.post(url_huge, json={"nothing": 1}).status_code == 400
    not_json = client.post(url_huge, content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
    assert client.get(url_huge, params={"query": "a > 1"}).status_code == 400

    # the domain is read-only
    assert client.put(url_huge, content=b"").status_code == 405
    assert client.delete(f"/groups/{member['g']}").status_code == 405


def test_http_limit_is_configurable_and_unsupported_values_show_repr() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<thing>"

    tree = {
        "big": np.zeros(1000),
        "ragged": [[1, 2], [3]],
        "thing": Thing(),
        "when": np.array(["2024-01-02"], "datetime64[D]"),
        "huge_int": 2**70,
    }
    app = FastAPI()
    app.include_router(create_h5_router(lambda: tree, threading.Lock, max_selection_bytes=4000))
    with serve(app) as base, httpx.Client(base_url=base) as client:
        member = ids(client)
        url_big = f"/datasets/{member['big']}/value"
        assert client.get(url_big, headers=OCTET).status_code == 413
        assert client.get(url_big, params={"select": "[0:500]"}, headers=OCTET).status_code == 200
        assert value(client, member["ragged"], "") == "[[1, 2], [3]]"
        assert value(client, member["thing"], "") == "<thing>"
        assert value(client, member["when"], "[0:1]") == ["2024-01-02"]
        assert value(client, member["huge_int"], "") == str(2**70)

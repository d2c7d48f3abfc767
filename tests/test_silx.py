"""silx reads a live reducer's tree over HTTP, as `silx view http://host:port/` does."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from typing import Iterator

import httpx
import numpy as np
import pytest

from tests.conftest import ROOT, XRD_CAPTURE, xrd_images

silx_io = pytest.importorskip("silx.io", reason="silx is not installed")
_h5pyd = pytest.importorskip("h5pyd", reason="silx opens HTTP URLs with h5pyd")
_silx_version = pytest.importorskip("silx").version
if int(_silx_version.split(".")[0]) >= 3 and not hasattr(_h5pyd, "get_config"):
    # silx 3 opens URLs with h5pyd.get_config(), which h5pyd has since 0.20; silx 2.x uses
    # h5pyd.Config() and reads the tree with h5pyd 0.18 (.ci/run runs that pair)
    pytest.skip(
        f"silx {_silx_version} needs h5pyd >= 0.20 to open URLs, h5pyd "
        f"{_h5pyd.version.version} is installed: pair h5pyd 0.18 with silx 2.x",
        allow_module_level=True,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dranspose replay --port --keep-alive` serving the live_tree payload's results."""
    folder = tmp_path_factory.mktemp("silx")
    shutil.copy(ROOT / "tests" / "payloads" / "live_tree.py", folder / "live_tree.py")
    shutil.copy(XRD_CAPTURE, folder / "dump_xrd.cbors")
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dranspose",
            "replay",
            "-w",
            "live_tree:SumWorker",
            "-r",
            "live_tree:TreeReducer",
            "-f",
            "dump_xrd.cbors",
            "--port",
            str(port),
            "--keep-alive",
            "--no-progress",
        ],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(folder)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v1/result/events", timeout=2).json() == 9:
                    break
            except (httpx.TransportError, ValueError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"replay server did not publish: {proc.stderr.read()!r}")
            time.sleep(0.1)
        yield url + "/"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # drains and closes the stderr pipe


def expected_sums() -> np.ndarray:
    images = xrd_images()
    return np.array([float(images[n].sum()) for n in sorted(images)])


def test_silx_open_lists_the_tree_in_insertion_order(live_url: str) -> None:
    with silx_io.open(live_url) as h5:
        assert silx_io.is_file(h5)
        assert list(h5.keys()) == ["title", "map", "events"]
        assert silx_io.is_group(h5["map"])
        assert silx_io.is_dataset(h5["map/sums"])


def test_silx_reads_datasets_attributes_and_scalars(live_url: str) -> None:
    with silx_io.open(live_url) as h5:
        np.testing.assert_array_equal(h5["map/sums"][()], expected_sums())
        assert h5["map/sums"].attrs["units"] == "counts"
        assert int(h5["events"][()]) == 9
        title = h5["title"][()]
        assert (title.decode() if isinstance(title, bytes) else title) == "image sums"


def test_silx_reads_a_slice_the_way_its_viewer_does(live_url: str) -> None:
    # silx.io.get_data only opens local paths; its viewer opens the URL and reads slices
    from silx.io.utils import h5py_read_dataset

    with silx_io.open(live_url) as h5:
        data = h5py_read_dataset(h5["map/sums"], index=slice(2, 5))
    np.testing.assert_array_equal(data, expected_sums()[2:5])

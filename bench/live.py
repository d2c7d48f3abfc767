"""Reading a live result over HTTP against reading the same array from a local HDF5 file.

Starts a real ``dranspose replay --port`` server whose reducer publishes a 1000x1000 float32
image (bench/live_payload.py), writes the same array to a local HDF5 file, then measures, in the
same run and alternating:

* h5py:   ``f["image"][...]`` on the local file (the file stays open; reads come from the page cache),
* rest:   ``GET /datasets/{id}/value`` with ``Accept: application/octet-stream`` (one HTTP request
  on a kept-alive urllib3 connection, the HTTP library under requests and h5pyd, decoded with
  ``np.frombuffer``),
* httpx:  the same request with httpx, for comparison (its response reading costs several ms
  per 4 MB body on its own),
* h5pyd:  ``h5pyd.File(url)["image"][...]`` through the h5pyd client, when h5pyd is installed.

Every read is checked against the array itself. Prints the median MB/s of each and the ratio to
h5py (target: rest >= 25 %).

    python bench/live.py [--repeats R]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import httpx
import numpy as np
import urllib3

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from live_payload import bench_image  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def timed(read, expected: np.ndarray) -> float:
    """MB/s of one read; the result must equal ``expected``."""
    start = time.perf_counter()
    out = read()
    elapsed = time.perf_counter() - start
    if not np.array_equal(out, expected):
        raise AssertionError("read returned different data")
    return expected.nbytes / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    image = bench_image()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dranspose",
            "replay",
            "-w",
            "live_payload:LiveWorker",
            "-r",
            "live_payload:LiveReducer",
            "-f",
            str(ROOT / "data" / "dump_xrd.cbors"),
            "--port",
            str(port),
            "--keep-alive",
            "--no-progress",
        ],
        cwd=HERE,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for(f"{base}/api/v1/status")
        with (
            tempfile.TemporaryDirectory() as tmp,
            httpx.Client(base_url=base, timeout=30) as client,
        ):
            path = Path(tmp) / "image.h5"
            with h5py.File(path, "w") as f:
                f["image"] = image
            root = client.get("/").json()["root"]
            link = client.get(f"/groups/{root}/links/image").json()["link"]
            value_url = f"/datasets/{link['id']}/value"
            dtype = np.dtype("<f4")

            pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1)
            binary = {"Accept": "application/octet-stream"}

            def rest() -> np.ndarray:
                response = pool.request("GET", value_url, headers=binary)
                if response.status != 200:
                    raise RuntimeError(f"GET {value_url}: HTTP {response.status}")
                return np.frombuffer(response.data, dtype=dtype).reshape(image.shape)

            def rest_httpx() -> np.ndarray:
                response = client.get(value_url, headers=binary)
                response.raise_for_status()
                return np.frombuffer(response.content, dtype=dtype).reshape(image.shape)

            readers = {}
            local = h5py.File(path, "r")
            readers["h5py"] = lambda: local["image"][...]
            readers["rest"] = rest
            readers["httpx"] = rest_httpx
            try:
                import h5pyd

                remote = h5pyd.File(base + "/", "r")
                readers["h5pyd"] = lambda: remote["image"][...]
            except ImportError:
                print("h5pyd not installed: h5pyd column skipped")
            rates: dict[str, list[float]] = {name: [] for name in readers}
            for name, read in readers.items():  # warm-up: connections, caches, imports  # noqa: B007
                timed(read, image)
            for _ in range(args.repeats):
                for name, read in readers.items():
                    rates[name].append(timed(read, image))
            local.close()
        base_rate = statistics.median(rates["h5py"])
        print(
            f"1000x1000 float32 ({image.nbytes / 1e6:.1f} MB), {args.repeats} alternating reads each"
        )
        for name, values in rates.items():
            med = statistics.median(values)
            print(f"{name:>6}: {med:9,.1f} MB/s  ({med / base_rate:6.1%} of h5py)")
        ratio = statistics.median(rates["rest"]) / base_rate
        print(f"target rest >= 25 % of h5py: {'met' if ratio >= 0.25 else 'MISSED'} ({ratio:.1%})")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()

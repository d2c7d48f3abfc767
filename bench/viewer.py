"""What the H5Web viewer costs the reducer, and how fast it fetches an image.

1. Reducer events/s with a viewer open vs without, in the same run (and with the viewer's
   requests sent by a plain HTTP client, to tell the server's cost from the browser's): a replay serving its
   reducer API (``replay --port``: the HTTP server shares the process with the reducer, as in
   the distributed reducer) folds ``--events`` events into a 1000x1000 float32 image; in the
   "viewer" rounds a headless chromium shows that image as a heatmap at ``/viewer/``, polling
   the publish version every second and re-fetching the image (4 MB) whenever it changed, i.e.
   every second of the scan. With 2+ CPUs the replay runs on one and the browser on the others
   (at a beamline the browser runs on another computer). Rounds alternate (without, with, with, without, ...) and each
   round's ratio is taken against its neighbour; the median of the ratios is printed (target
   >= 95 %).
2. Fetching a 1000x1000 float32 image through ``/h5grove/data/?format=bin`` (what H5Web asks)
   vs h5py reading the same array from a local HDF5 file: median of interleaved repeats.

    python bench/viewer.py [--events N] [--rounds R] [--repeats K]

Needs Debian's chromium (or $DRANSPOSE_CHROMIUM) for part 1; part 2 runs without.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

import h5py
import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dranspose.core.event import InternalWorkerMessage, StreamData  # noqa: E402
from dranspose.core.parameters import ParameterSet  # noqa: E402
from dranspose.http.h5rest import GrowingBuffer  # noqa: E402
from dranspose.http.reducer_api import create_app  # noqa: E402
from dranspose.tools.replay import replay  # noqa: E402
from dranspose.tools.serving import serve_in_thread  # noqa: E402
from tests.ports import free_port  # noqa: E402
from tests.support.browser import CHROMIUM_ARGS, find_chromium  # noqa: E402

SHAPE = (1000, 1000)
TILE = 100


class BenchSource:
    events = 200_000

    def get_source_generators(self):
        def gen():
            for i in range(self.events):
                yield InternalWorkerMessage.model_construct(
                    event_number=i,
                    streams={"s": StreamData.model_construct(typ="t", frames=[b"x"])},
                    created_at=None,
                )

        return [gen()]


class BenchWorker:
    def process_event(self, event, parameters=None):
        return event.event_number


class BenchReducer:
    """Adds each event to one 100x100 tile of a 1000x1000 float32 image, and records a sum."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.publish_rlock = threading.RLock()
        self.publish = {
            "image": np.zeros(SHAPE, np.float32),
            "sums": GrowingBuffer(np.float64),
        }

    def process_result(self, result, parameters=None):
        n = result.payload
        r, c = divmod(n % 100, 10)
        with self.publish_rlock:
            self.publish["image"][r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] += 1.0
            self.publish["sums"][n] = float(n)


REDUCER_CPUS: Optional[set[int]] = None
"""With 2+ CPUs, the replay (reducer and its HTTP server) runs on the first and the browser on
the others: at a beamline the browser runs on another computer, so its rendering must not take
the reducer's CPU here."""


def serve_round(port: int, events: int) -> None:
    """The replay process of one round: waits for a line on stdin, replays, prints events/s."""
    if REDUCER_CPUS is not None:
        os.sched_setaffinity(0, REDUCER_CPUS)
    BenchSource.events = events
    start, done, stop = threading.Event(), threading.Event(), threading.Event()
    thread = threading.Thread(
        target=replay,
        args=(BenchWorker, BenchReducer, None, BenchSource, None),
        kwargs={
            "port": port,
            "start_event": start,
            "done_event": done,
            "stop_event": stop,
            "nworkers": 1,
        },
        daemon=True,
    )
    thread.start()
    sys.stdin.readline()
    began = time.perf_counter()
    start.set()
    done.wait()
    print(f"{events / (time.perf_counter() - began)}", flush=True)
    sys.stdin.readline()
    stop.set()
    thread.join(20)


class ViewerRequests:
    """The requests the viewer makes while it shows the image, sent without a browser: every
    second the version, and when it moved the root's and the image's metadata and the image."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.fetched = 0

    def run(self, url: str) -> None:
        api = f"{url}/h5grove"
        last = None
        with httpx.Client(timeout=30) as client:
            while not self.stop.wait(1.0):
                version = client.get(f"{api}/version").json()["version"]
                if version == last:
                    continue
                last = version
                client.get(f"{api}/meta", params={"file": "publish", "path": "/"})
                client.get(f"{api}/meta", params={"file": "publish", "path": "/image"})
                params = {"file": "publish", "path": "/image", "format": "bin", "dtype": "safe"}
                client.get(f"{api}/data", params=params)
                self.fetched += 1


def run_round(events: int, page: Optional[Any]) -> float:
    """Events/s of one replay (its own process); with ``page``, the viewer shows the image
    (``"client"``: the viewer's requests without a browser)."""
    import subprocess

    port = free_port()
    cpus = ",".join(map(str, sorted(REDUCER_CPUS))) if REDUCER_CPUS else ""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--events", str(events), "--cpus", cpus],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/h5grove/", timeout=2)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    if page is not None and page != "client":
        page.goto(f"{url}/viewer/")
        page.get_by_role("treeitem", name="image", exact=True).click()
        page.locator('figure[aria-label="image"]').wait_for()
        page.wait_for_timeout(500)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    if page is None:
        line = proc.stdout.readline()
    elif page == "client":
        requests = ViewerRequests()
        poller = threading.Thread(target=requests.run, args=(url,))
        poller.start()
        line = proc.stdout.readline()
        requests.stop.set()
        poller.join()
    else:
        fetched = 0

        def count(response: Any) -> None:
            nonlocal fetched
            if "path=%2Fimage" in response.url and "/data" in response.url:
                fetched += 1

        page.on("response", count)
        reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()))  # type: ignore[union-attr]
        lines: list[str] = []
        reader.start()
        while reader.is_alive():
            page.wait_for_timeout(100)  # the page keeps polling and rendering meanwhile
        line = lines[0]
        page.remove_listener("response", count)
        page.goto("about:blank")
        rate = float(line)
        if fetched < events / rate / 2:
            print(f"  warning: the viewer fetched the image only {fetched} times")
    proc.stdin.write("end\n")
    proc.stdin.flush()
    proc.wait(30)
    return float(line)


def part_overhead(events: int, rounds: int) -> None:
    executable = find_chromium()
    if executable is None:
        print("1. viewer overhead: SKIPPED, no chromium (apt-get install chromium)")
        return
    from playwright.sync_api import sync_playwright

    global REDUCER_CPUS
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        REDUCER_CPUS = {cpus[0]}
        os.sched_setaffinity(0, set(cpus[1:]))  # this thread, Playwright and chromium
        print(f"   reducer on CPU {cpus[0]}, the browser on CPU {', '.join(map(str, cpus[1:]))}")
    else:
        print("   one CPU: the browser competes with the reducer for it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        run_round(min(events, 2000), None)  # warm-up: imports, first server
        modes: dict[str, list[float]] = {
            "no viewer": [],
            "viewer (chromium)": [],
            "its requests": [],
        }
        pages = {"no viewer": None, "viewer (chromium)": page, "its requests": "client"}
        names = list(modes)
        for r in range(rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                modes[name].append(run_round(events, pages[name]))
        browser.close()
    print(f"1. reducer events/s, {events} events per round, {rounds} rounds (1000x1000 image)")
    print(f"   {'mode':<22}{'median events/s':>16}{'min':>10}{'max':>10}{'vs none':>9}")
    for name, rates in modes.items():
        ratios = [w / b for w, b in zip(rates, modes["no viewer"])]
        print(
            f"   {name:<22}{statistics.median(rates):>16,.0f}{min(rates):>10,.0f}"
            f"{max(rates):>10,.0f}{statistics.median(ratios):>9.0%}"
        )
    for name in names[1:]:
        ratios = [w / b for w, b in zip(modes[name], modes["no viewer"])]
        ratio = statistics.median(ratios)
        print(
            f"   {name}: {ratio:.1%} of the rate without, median of the rounds' ratios "
            f"({', '.join(f'{x:.0%}' for x in ratios)}; target >= 95 %): "
            f"{'OK' if ratio >= 0.95 else 'BELOW TARGET'}"
        )


class _StaticHost:
    component_name = "bench"

    def __init__(self, image: np.ndarray) -> None:
        class Payload:
            publish = {"image": image}

        self.reducer = Payload()
        self.parameters = ParameterSet({}, {})
        self.calls = None

    def set_parameter(self, name: str, data: bytes) -> ParameterSet:
        raise KeyError(name)

    def status(self) -> dict[str, Any]:
        return {}


def part_fetch(repeats: int) -> None:
    image = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    port = free_port()
    server = serve_in_thread(create_app(_StaticHost(image)), port=port)  # type: ignore[arg-type]
    url = f"http://127.0.0.1:{port}/h5grove/data/"
    params = {"file": "publish", "path": "/image", "format": "bin", "dtype": "safe"}
    with tempfile.TemporaryDirectory() as tmp, httpx.Client(timeout=30) as client:
        path = Path(tmp) / "image.h5"
        with h5py.File(path, "w") as f:
            f["image"] = image
        http_s: list[float] = []
        h5_s: list[float] = []
        for i in range(repeats + 2):
            t0 = time.perf_counter()
            got = np.frombuffer(client.get(url, params=params).content, "<f4").reshape(SHAPE)
            t1 = time.perf_counter()
            with h5py.File(path, "r") as f:
                local = f["image"][()]
            t2 = time.perf_counter()
            assert np.array_equal(got, image) and np.array_equal(local, image)
            if i >= 2:  # warm-up
                http_s.append(t1 - t0)
                h5_s.append(t2 - t1)
    server.stop()
    http_ms, h5_ms = statistics.median(http_s) * 1e3, statistics.median(h5_s) * 1e3
    print(f"2. a 1000x1000 float32 image (4 MB), median of {repeats} interleaved reads")
    print(f"   /h5grove/data/?format=bin (HTTP, loopback)  {http_ms:8.1f} ms")
    print(f"   h5py from a local file (open + read)        {h5_ms:8.1f} ms")
    print(f"   HTTP takes {http_ms / h5_ms:.1f}x the local read")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # one round's replay
    parser.add_argument("--cpus", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        global REDUCER_CPUS
        REDUCER_CPUS = {int(c) for c in args.cpus.split(",")} if args.cpus else None
        serve_round(args.serve, args.events)
        return
    part_fetch(args.repeats)
    part_overhead(args.events, args.rounds)


if __name__ == "__main__":
    main()

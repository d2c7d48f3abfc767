"""The H5Web viewer (``/viewer/``) in Debian's headless chromium, on a live replay.

One replay (``tests.payloads.viewer``: a growing 1-d dataset, an image, attributes, a NeXus
NXdata group) runs for the whole module at a beamline-like pace (``latency``), serving its
reducer API; each test opens the page and checks what H5Web shows against the arrays the
payload publishes. Every page must load without console errors and without failed or refused
requests. Set ``$DRANSPOSE_SCREENSHOTS`` to a directory to keep screenshots of the scan.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest

from dranspose.tools.replay import replay
from tests.payloads.viewer import ViewerReducer, ViewerSource, ViewerWorker, sum_of
from tests.ports import free_port
from tests.support.browser import chromium_context

LATENCY = 0.05
"""Seconds between events: the scan grows steadily while the tests look at it."""


@pytest.fixture(scope="module")
def live_url() -> Iterator[str]:
    """A replay serving the viewer; it runs (far longer than the tests) until the module ends."""
    port = free_port()
    stop, done = threading.Event(), threading.Event()
    ViewerSource.events = 100_000
    thread = threading.Thread(
        target=replay,
        args=(ViewerWorker, ViewerReducer, None, ViewerSource, None),
        kwargs={
            "port": port,
            "stop_event": stop,
            "done_event": done,
            "nworkers": 1,
            "latency": LATENCY,
        },
        daemon=True,
    )
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/h5grove/meta/", params={"path": "/sums"}).json()["shape"][0]:
                break
        except (httpx.HTTPError, KeyError):
            pass
        assert time.monotonic() < deadline, "the replay did not serve results"
        time.sleep(0.1)
    yield url
    stop.set()
    thread.join(20)


@pytest.fixture(scope="module")
def context() -> Iterator[Any]:
    with chromium_context("the viewer's browser tests") as ctx:
        yield ctx


class Watched:
    """A page with every console error, failed request and 4xx/5xx answer recorded."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
            ),
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on(
            "response",
            lambda r: self.problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
        )


@pytest.fixture
def viewer(context, live_url) -> Iterator[Watched]:
    page = context.new_page()
    page.set_viewport_size({"width": 1280, "height": 720})
    # H5Web remembers the last visualization chosen (localStorage): each test starts afresh
    page.add_init_script("window.localStorage.clear()")
    watched = Watched(page)
    page.goto(f"{live_url}/viewer/")
    yield watched
    problems = list(watched.problems)
    page.close()
    assert problems == [], problems


def _select(viewer: Watched, name: str) -> None:
    viewer.page.get_by_role("treeitem", name=name, exact=True).click()
    viewer.page.locator(f'figure[aria-label="{name}"], [role="grid"]').first.wait_for()


def _screenshot(viewer: Watched, name: str) -> None:
    folder = os.environ.get("DRANSPOSE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        viewer.page.screenshot(path=str(Path(folder) / f"viewer-{name}.png"))


def _dim_sizes(viewer: Watched) -> list[int]:
    text = viewer.page.locator('[class*="_dims_"]').first.inner_text()
    return [int(n) for n in text.split()[1:]]


def test_nexus_default_plot_and_one_tree_item_per_key(viewer):
    page = viewer.page
    # the root's default -> entry -> its default NXdata: H5Web plots its signal against its axis
    page.locator('figure[aria-label="intensity"]').wait_for()
    assert page.get_by_role("tab", name="NX Line").get_attribute("aria-selected") == "true"
    labels = page.locator("figure text.visx-axis-label")
    labels.first.wait_for()
    assert "position" in labels.all_text_contents()  # the abscissa: the NXdata's axes attribute
    items = page.get_by_role("treeitem")
    names = [items.nth(i).inner_text().strip() for i in range(items.count())]
    assert names[0] == "publish"
    assert [n.removesuffix("NX").strip() for n in names[1:]] == [
        "sums",
        "image",
        "small",
        "title",
        "entry",
    ]


def test_line_plot_of_a_1d_dataset_and_its_attributes(viewer, live_url):
    page = viewer.page
    _select(viewer, "sums")
    assert page.get_by_role("tab", name="Line").get_attribute("aria-selected") == "true"
    page.get_by_role("tab", name="Matrix").click()
    cells = page.locator('[role="gridcell"][class*="_dataCell_"]')
    cells.nth(3).wait_for()
    shown = [float(cells.nth(i).inner_text()) for i in range(4)]
    assert shown == [sum_of(i) for i in range(4)]
    page.get_by_role("tab", name="Inspect").click()
    page.get_by_role("row", name='long_name "frame sum"').wait_for()
    rows = page.locator("tr")
    # cell by cell: innerText joins cells without a space while a reset re-lays them out
    text = [
        " ".join(c.strip() for c in rows.nth(i).locator("th, td").all_text_contents())
        for i in range(rows.count())
    ]
    assert text[text.index("Attributes") + 1 :] == ['units "counts"', 'long_name "frame sum"']
    assert not [t for t in text if "_attrs" in t]


def test_heatmap_of_an_image_and_matrix_of_numpy_values(viewer):
    page = viewer.page
    _select(viewer, "image")
    assert page.get_by_role("tab", name="Heatmap").get_attribute("aria-selected") == "true"
    assert _dim_sizes(viewer) == [48, 64]
    _screenshot(viewer, "heatmap")
    _select(viewer, "small")
    page.get_by_role("tab", name="Matrix").click()
    page.locator('[role="gridcell"][class*="_dataCell_"]').nth(11).wait_for()
    rows = page.locator('[role="row"]')  # zero-sized (cells are positioned): not "visible"
    small = np.arange(12, dtype=np.int32).reshape(3, 4) * 7
    cell = '[role="gridcell"][class*="_dataCell_"]'
    shown = [
        [float(x) for x in rows.nth(r).locator(cell).all_text_contents()]
        for r in range(rows.count())
    ]
    assert shown == small.tolist()


def test_the_plot_grows_while_the_scan_runs_without_a_reload(viewer, live_url):
    page = viewer.page
    _select(viewer, "sums")
    page.evaluate("window.__no_reload = true")
    first = _dim_sizes(viewer)[0]
    _screenshot(viewer, "line")
    deadline = time.monotonic() + 15
    while _dim_sizes(viewer)[0] < first + 20:
        assert time.monotonic() < deadline, f"the plotted length stayed at {_dim_sizes(viewer)}"
        page.wait_for_timeout(250)
    grown = _dim_sizes(viewer)[0]
    served = httpx.get(f"{live_url}/h5grove/meta/", params={"path": "/sums"}).json()["shape"][0]
    assert first + 20 <= grown <= served
    assert page.evaluate("window.__no_reload") is True
    # still the same dataset and view
    assert page.locator('figure[aria-label="sums"]').count() == 1
    assert page.get_by_role("tab", name="Line").get_attribute("aria-selected") == "true"
    _screenshot(viewer, "line-later")

"""The web dashboard, end to end: a real pipeline, the page in a real headless Chromium.

One pipeline (private Redis, controller, an ingester, two workers, a reducer; each its own
process) serves the whole module. Tests that need a scan start their own, fed by a paced
synthetic STINS source, and stop it when done. Effects are checked outside the page: parameter
values through the controller's REST API and, for what workers really used, through the
results the reducer publishes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import httpx
import pytest

from dranspose.core.triggermap import TriggerMap
from dranspose.io.local_redis import PrivateRedis
from tests.ports import free_port
from tests.support.browser import chromium_context
from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "dashboard-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SOURCE_RATE = 100.0
"""Images per second the synthetic detector sends: scans advance steadily, even under load."""
SCAN_EVENTS = 50_000
"""Far more than a test waits for: every scan here runs until the test stops it."""
# ------------------------------------------------------------------------------ the pipeline


@dataclass
class System:
    api: str
    results: str
    upstream: str
    workdir: Path
    client: httpx.Client
    env: dict[str, str]
    token_enforced: bool = False
    ready_at: float = 0.0
    """time.monotonic() when every component had registered"""
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, *args: str) -> subprocess.Popen:
        log = open(self.workdir / f"{args[0]}-{len(self.procs)}.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "dranspose", *args],
            cwd=self.workdir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.workdir.glob("*.log"))
        )


def stop_processes(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> Iterator[System]:
    workdir = tmp_path_factory.mktemp("dashboard")
    with PrivateRedis() as redis_server:
        env = {
            **os.environ,
            "REDIS_URL": redis_server.url,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
            "DASHBOARD_WORKER_SECONDS": "0.005",
            "DRANSPOSE_TOKEN": TOKEN,
        }
        api_port, results_port, upstream_port = free_port(), free_port(), free_port()
        sys_ = System(
            api=f"http://127.0.0.1:{api_port}",
            results=f"http://127.0.0.1:{results_port}",
            upstream=f"tcp://127.0.0.1:{upstream_port}",
            workdir=workdir,
            client=httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10),
            env=env,
        )
        try:
            sys_.start("controller", "--host", "127.0.0.1", "--port", str(api_port))
            sys_.start("ingester", "--stream", "det", "--upstream", sys_.upstream)
            sys_.start(
                "worker",
                "--class",
                "tests.payloads.dashboard:PacedWorker",
                "--name",
                "w0",
                "--tags",
                "generic,gpu",
            )
            sys_.start("worker", "--class", "tests.payloads.dashboard:PacedWorker", "--name", "w1")
            sys_.start(
                "reducer",
                "--class",
                "tests.payloads.dashboard:FactorReducer",
                "--worker-class",
                "tests.payloads.dashboard:PacedWorker",
                "--host",
                "127.0.0.1",
                "--port",
                str(results_port),
            )
            try:
                wait_until(
                    lambda: len(sys_.client.get("/api/v1/config").json()["components"]) >= 5,
                    90,
                    "registration of all five components",
                )
                wait_until(
                    lambda: len(sys_.client.get("/api/v1/parameters").json()) >= 5,
                    30,
                    "parameter declarations",
                )
            except TimeoutError:
                raise AssertionError(f"the pipeline did not come up:\n{sys_.logs()}") from None
            # a mutating request without the token, before any scan exists (so it changes
            # nothing even if it were accepted): test_missing_token_is_reported_as_401 needs 401
            sys_.token_enforced = sys_.client.post("/api/v1/stop").status_code == 401
            sys_.ready_at = time.monotonic()
            yield sys_
        finally:
            sys_.client.close()
            stop_processes(sys_.procs)


@dataclass
class Scan:
    scan_id: str
    total: int


@pytest.fixture
def running_scan(system: System) -> Iterator[Scan]:
    """A scan in progress (fed at SOURCE_RATE); stopped and fully wound down afterwards."""
    from dranspose.tools.source import StinsSource

    request = TriggerMap.simple(["det"], SCAN_EVENTS).request.model_dump(mode="json")
    response = system.client.post("/api/v1/sequence", content=json.dumps(request), headers=AUTH)
    assert response.status_code == 200, response.text
    record = system.client.get("/api/v1/sequence", headers=AUTH).json()
    assert record["scan_id"] == response.json()  # POST answers the id itself, as the original
    scan = Scan(scan_id=response.json(), total=record["events"])
    source = StinsSource(system.upstream, frames=SCAN_EVENTS, rate=SOURCE_RATE).start()
    try:
        wait_until(
            lambda: system.client.get("/api/v1/progress").json()["completed"] > 0,
            60,
            "the first completed event",
        )
        yield scan
    finally:
        system.client.post("/api/v1/stop", headers=AUTH)
        try:
            wait_until(
                lambda: (lambda s: s["scan_id"] != scan.scan_id or s["finished"])(
                    system.client.get("/api/v1/status").json()
                ),
                60,
                "the scan to wind down",
            )
        finally:
            source.stop()


# ------------------------------------------------------------------------------ the browser


@pytest.fixture(scope="module")
def browser_context() -> Iterator[Any]:
    with chromium_context("the dashboard's browser tests") as context:
        yield context


@pytest.fixture
def open_page(browser_context, system) -> Iterator[Any]:
    """``open_page(token=...)`` opens the dashboard in a new tab (own sessionStorage);
    ``without_logs=True`` answers its log requests with 404, as a controller without them would.

    An uncaught JavaScript error in any of the test's pages fails the test.
    """
    pages = []
    script_errors: list[str] = []

    def opener(token: Optional[str] = None, without_logs: bool = False) -> Any:
        page = browser_context.new_page()
        page.on("pageerror", lambda exc: script_errors.append(str(exc)))
        pages.append(page)
        if without_logs:  # the page talks to a controller that has no log endpoints
            page.route(
                re.compile(r"/api/v1/log(s|_stream)(\?|$)"),
                lambda route: route.fulfill(status=404, json={"detail": "Not Found"}),
            )
        page.goto(system.api + "/")
        page.wait_for_selector("#connection.ok")
        if token is not None:
            page.fill("#token", token)
            page.click("#token-save")
        return page

    yield opener
    for page in pages:
        page.close()
    assert script_errors == [], "the page raised JavaScript errors"


def parameter_row(page: Any, name: str) -> Any:
    return page.locator(f'#parameters tr[data-name="{name}"]')


def apply_in_page(page: Any, name: str) -> str:
    """Click a parameter's Apply button; returns the message shown for the server's answer."""
    row = parameter_row(page, name)
    message = row.locator(".param-result .message")
    message.evaluate("e => { delete e.dataset.status; e.textContent = ''; }")
    row.locator("button.apply").click()
    row.locator(".param-result .message[data-status]").wait_for()
    return message.inner_text()


def published_factors(system: System) -> dict[str, int]:
    response = httpx.get(f"{system.results}/api/v1/result/factor_by_worker", timeout=10)
    return response.json() if response.status_code == 200 else {}


# ------------------------------------------------------------------------------ tests


def test_page_and_assets_are_served_next_to_the_api(system):
    page = system.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="dashboard/app.js"' in page.text and 'href="dashboard/style.css"' in page.text
    for name, media in [("app.js", "text/javascript"), ("style.css", "text/css")]:
        asset = system.client.get(f"/dashboard/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(media)
        assert asset.content == (ROOT / "dranspose" / "dashboard" / name).read_bytes()
    missing = system.client.get("/dashboard/secrets.txt")
    assert missing.status_code == 404 and "secrets.txt" in missing.json()["detail"]
    assert system.client.get("/docs").status_code == 200
    paths = system.client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/scan", "/api/v1/sequence", "/api/v1/parameters"} <= paths.keys()


def test_scan_overview_measures_rate_and_eta(system, running_scan):
    """``/api/v1/scan``: its events/s is the progress between two reads of it, per second of
    the controller's clock (nobody else reads it during this scan, so those are its samples)."""
    first = system.client.get("/api/v1/scan").json()
    time.sleep(2.0)
    second = system.client.get("/api/v1/scan").json()
    assert second["state"] == "running" and second["scan"]["scan_id"] == running_scan.scan_id
    progress = second["progress"]
    assert second["done"] == progress["completed"] + len(progress["failed"]) + len(progress["lost"])
    measured = (second["done"] - first["done"]) / (second["server_time"] - first["server_time"])
    assert measured > 0
    assert second["events_per_second"] == pytest.approx(measured, rel=0.01)
    remaining = running_scan.total - second["done"]
    assert second["eta_seconds"] == pytest.approx(remaining / second["events_per_second"], rel=1e-6)
    assert second["elapsed_seconds"] == pytest.approx(
        second["server_time"] - second["scan"]["started_at"], abs=1e-3
    )


def test_components_panel_shows_every_component_alive(open_page, system):
    # outlive the registry entries' lifetime (3 s): a small age then means heartbeats refresh it
    time.sleep(max(0.0, system.ready_at + 4.0 - time.monotonic()))
    page = open_page()
    rows = page.locator("#components tbody tr")
    page.wait_for_function("document.querySelectorAll('#components tbody tr').length >= 5")
    seen = {(r.get_attribute("data-kind"), r.get_attribute("data-name")): r for r in rows.all()}
    expected = {
        ("controller", "controller"),
        ("ingester", "det-ingester"),
        ("worker", "w0"),
        ("worker", "w1"),
        ("reducer", "reducer"),
    }
    assert expected <= seen.keys()
    assert seen[("ingester", "det-ingester")].locator(".detail").inner_text() == "streams: det"
    assert seen[("worker", "w0")].locator(".detail").inner_text() == "tags: generic, gpu"
    assert seen[("worker", "w1")].locator(".detail").inner_text() == "tags: generic"
    for key in expected:
        row = seen[key]
        state = row.get_attribute("data-state")
        age = float(row.locator(".last-seen").get_attribute("data-age"))
        assert state in ("idle", "scanning") and age < 3.0, (key, state, age)


def test_the_reducers_results_viewer_is_linked(open_page, system):
    page = open_page()
    link = page.locator("#scan-results a.viewer-link")
    link.wait_for()
    href = link.get_attribute("href")
    assert href == f"{system.results}/viewer/"
    row_link = page.locator('#components tr[data-kind="reducer"] .detail a')
    assert row_link.get_attribute("href") == href
    page.goto(href)  # the reducer's H5Web viewer of its publish tree
    page.get_by_role("treeitem", name="publish").wait_for()


def test_progress_bar_advances_during_a_scan(open_page, system, running_scan):
    page = open_page()
    page.wait_for_function("document.getElementById('scan-state').textContent === 'running'")
    bar = page.locator("#scan-progress")
    assert int(bar.get_attribute("data-total")) == running_scan.total
    first = int(bar.get_attribute("data-done"))
    page.wait_for_function(
        f"Number(document.getElementById('scan-progress').dataset.done) > {first}"
    )
    second = page.eval_on_selector("#scan-progress", "e => e.value")
    assert second > first
    assert page.eval_on_selector("#scan-progress", "e => e.max") == running_scan.total
    page.wait_for_function("/events\\/s/.test(document.getElementById('scan-rate').textContent)")
    assert page.inner_text("#scan-eta") != "–"
    assert page.inner_text("#scan-id") == running_scan.scan_id


def test_load_panel_lists_each_workers_completed_events(open_page, system, running_scan):
    page = open_page()
    page.wait_for_selector('#load tr[data-worker="w0"]')
    page.wait_for_selector('#load tr[data-worker="w1"]')
    shown = int(page.inner_text('#load tr[data-worker="w0"] .completed'))
    assert shown <= system.client.get("/api/v1/load").json()["w0"]["completed"]


def test_parameter_edit_in_the_page_reaches_the_workers(open_page, system, running_scan):
    old = int(system.client.get("/api/v1/parameter/factor").content)
    wait_until(
        lambda: published_factors(system) == {"w0": old, "w1": old},
        60,
        "results of both workers with the old factor",
    )
    new = old + 5
    page = open_page(token=TOKEN)
    row = parameter_row(page, "factor")
    row.locator("input").fill(str(new))
    with page.expect_request(lambda r: r.method == "POST" and "parameter/factor" in r.url) as sent:
        row.locator("button.apply").click()
    assert sent.value.post_data == str(new)
    assert sent.value.headers.get("authorization") == f"Bearer {TOKEN}"
    page.wait_for_function(
        "document.querySelector('#parameters tr[data-name=factor] .param-result .message')"
        ".textContent.startsWith('applied')"
    )
    assert system.client.get("/api/v1/parameter/factor").content == str(new).encode()
    # a real effect: both workers compute with the new value while the scan runs
    wait_until(
        lambda: published_factors(system) == {"w0": new, "w1": new},
        60,
        "results of both workers with the new factor",
    )


def test_client_side_check_blocks_an_obvious_type_error(open_page, system):
    page = open_page(token=TOKEN)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    row = parameter_row(page, "factor")
    row.locator("input").fill("three")
    assert "invalid" in row.locator("input").get_attribute("class")
    row.locator("button.apply").click()
    message = row.locator(".param-result .message")
    assert message.inner_text() == "not sent: not an integer (e.g. 3 or -12)"
    assert message.get_attribute("data-source") == "client"
    page.wait_for_timeout(300)
    assert posts == []


def test_server_rejection_is_shown_in_the_page(open_page, system):
    """``1e3`` is an integer to JavaScript, not to the server: its 422 reason is shown."""
    before = system.client.get("/api/v1/parameter/factor").content
    direct = system.client.post("/api/v1/parameter/factor", content=b"1e3", headers=AUTH)
    assert direct.status_code == 422
    reason = direct.json()["detail"]
    assert "factor" in reason and "1e3" in reason
    page = open_page(token=TOKEN)
    row = parameter_row(page, "factor")
    row.locator("input").fill("1e3")
    row.locator("button.apply").click()
    message = row.locator('.param-result .message[data-status="422"]')
    message.wait_for()
    assert message.inner_text() == f"rejected by the server: {reason}"
    assert "error" in message.get_attribute("class")
    assert system.client.get("/api/v1/parameter/factor").content == before


def test_every_parameter_type_is_sent_as_the_server_reads_it(open_page, system, tmp_path):
    page = open_page(token=TOKEN)
    parameter_row(page, "threshold").locator("input").fill(" 0.25")
    parameter_row(page, "label").locator("input").fill("hello wörld ")
    enabled = parameter_row(page, "enabled").locator("input")
    enabled.set_checked(not enabled.is_checked())
    wanted_enabled = b"true" if enabled.is_checked() else b"false"
    mask = tmp_path / "mask.bin"
    mask.write_bytes(bytes(range(256)) * 4)
    parameter_row(page, "mask").locator("input").set_input_files(str(mask))
    for name in ("threshold", "label", "enabled", "mask"):
        assert apply_in_page(page, name).startswith("applied"), name
    raw = {
        name: system.client.get(f"/api/v1/parameter/{name}").content
        for name in ("threshold", "label", "enabled", "mask")
    }
    assert raw == {
        "threshold": b"0.25",
        "label": "hello wörld ".encode(),
        "enabled": wanted_enabled,
        "mask": mask.read_bytes(),
    }
    # the page shows the size of a binary value, not its bytes
    page.wait_for_function(
        "document.querySelector('#parameters tr[data-name=mask] "
        ".param-current code').textContent === '1024 bytes'"
    )


def test_missing_token_is_reported_as_401(open_page, system):
    assert system.token_enforced, "POST /api/v1/stop without the token was accepted"
    page = open_page()
    row = parameter_row(page, "label")
    row.locator("input").fill("no token")
    row.locator("button.apply").click()
    message = row.locator('.param-result .message[data-status="401"]')
    message.wait_for()
    assert message.inner_text().startswith("401 Unauthorized")
    assert "requires an access token" in message.inner_text()
    assert system.client.get("/api/v1/parameter/label").content != b"no token"
    page.fill("#token", TOKEN)
    page.click("#token-save")
    row.locator("button.apply").click()
    row.locator('.param-result .message[data-status="200"]').wait_for()
    assert system.client.get("/api/v1/parameter/label").content == b"no token"


def test_stop_button_stops_the_running_scan(open_page, system, running_scan):
    page = open_page(token=TOKEN)
    page.on("dialog", lambda dialog: dialog.accept())
    page.wait_for_selector("#stop-scan:not([disabled])")
    page.click("#stop-scan")
    page.wait_for_function(
        "document.getElementById('stop-message').textContent === 'stop requested'"
    )
    status = system.client.get("/api/v1/status").json()
    assert status["scan_id"] == running_scan.scan_id and status["stopped"] is True
    page.wait_for_function(
        "['stopping', 'reducing', 'stopped']"
        ".includes(document.getElementById('scan-state').textContent)"
    )


def test_a_component_that_stops_is_shown_as_gone(open_page, system):
    extra = system.start(
        "worker", "--class", "tests.payloads.dashboard:PacedWorker", "--name", "w-extra"
    )
    page = open_page()
    row = page.locator('#components tr[data-name="w-extra"]')
    row.wait_for()
    stop_processes([extra])
    page.wait_for_selector('#components tr[data-name="w-extra"][data-state="gone"]')
    assert "gone" in row.get_attribute("class")


def test_log_tail_says_unavailable_without_a_log_endpoint(open_page, system):
    page = open_page(without_logs=True)
    page.wait_for_function(
        "document.getElementById('log-status').textContent.startsWith('log tail unavailable')"
    )


def test_log_tail_shows_the_pipelines_log_records(open_page, system, running_scan):
    assert system.client.get("/api/v1/logs").status_code == 200
    wait_until(lambda: system.client.get("/api/v1/logs?limit=1").json(), 30, "a log record")
    page = open_page()
    page.select_option("#log-level", "DEBUG")

    def newest_is_shown() -> bool:
        newest = system.client.get("/api/v1/logs?limit=1").json()[-1]["message"]
        return newest in page.eval_on_selector_all(
            "#log .message", "els => els.map(e => e.textContent)"
        )

    # records keep coming while the scan runs: the page catches up with the newest one
    wait_until(newest_is_shown, 30, "the newest log record in the page")
    assert page.get_attribute("#log-panel", "data-mode") in ("stream", "polling")


def test_log_panel_keeps_time_order_and_cuts_long_records_to_one_line(browser_context, system):
    """Records arriving out of order are shown in time order; a 3,000-number list is one line
    until expanded. The records are served to the page by a route (the page's logic is tested,
    with records whose order and length are chosen here)."""
    now = time.time()
    numbers = list(range(3000))
    records = [
        {"time": now - 1, "level": "INFO", "component": "worker-b", "logger": "x", "message": "c"},
        {
            "time": now - 3,
            "level": "INFO",
            "component": "reducer",
            "logger": "x",
            "message": f"evolution {numbers}",
        },
        {
            "time": now - 2,
            "level": "ERROR",
            "component": "worker-a",
            "logger": "x",
            "message": "Traceback (most recent call last):\n  File 'w.py', line 3\nKeyError: 'x'",
        },
    ]
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.route(re.compile(r"/api/v1/logs(\?|$)"), lambda route: route.fulfill(json=records))
        page.route(re.compile(r"/api/v1/log_stream"), lambda route: route.fulfill(status=404))
        page.goto(system.api + "/")
        page.wait_for_selector("#log li.long")
        shown = page.eval_on_selector_all("#log .message", "els => els.map(e => e.textContent)")
        ours = [m for m in shown if m in {r["message"] for r in records}]
        assert ours == [records[1]["message"], records[2]["message"], "c"]
        long_line = page.locator("#log li.long").first
        short_line = page.locator("#log li:not(.long)").first
        one_line = short_line.bounding_box()["height"]
        assert long_line.bounding_box()["height"] < 1.6 * one_line
        if os.environ.get("DRANSPOSE_SCREENSHOTS"):  # for the docs: DRANSPOSE_SCREENSHOTS=dir
            page.locator("#log-panel").screenshot(
                path=os.path.join(os.environ["DRANSPOSE_SCREENSHOTS"], "log-panel.png")
            )
        long_line.locator("button.expand").click()
        assert long_line.bounding_box()["height"] > 5 * one_line
        long_line.locator("button.expand").click()
        assert long_line.bounding_box()["height"] < 1.6 * one_line
        # the traceback is one line too, until expanded
        trace = page.locator("#log li.long", has_text="Traceback")
        assert trace.bounding_box()["height"] < 1.6 * one_line
    finally:
        page.close()
    assert errors == []


def test_package_data_ships_every_dashboard_asset():
    """``pip install .`` must carry the page: every served asset matches a package-data glob."""
    import fnmatch

    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    from dranspose.http.dashboard import ASSETS

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["dranspose"]
    on_disk = {p.name for p in (ROOT / "dranspose" / "dashboard").iterdir() if p.is_file()}
    assert on_disk == set(ASSETS)
    for name in ASSETS:
        assert any(fnmatch.fnmatch(f"dashboard/{name}", g) for g in globs), name


@pytest.mark.parametrize(
    "stopped, finished, reducer_finished, state",
    [
        (False, False, False, "running"),
        (True, False, False, "stopping"),
        (False, True, False, "reducing"),
        (True, True, False, "reducing"),
        (False, True, True, "finished"),
        (True, True, True, "stopped"),
    ],
)
def test_scan_state_names_what_the_scan_waits_for(stopped, finished, reducer_finished, state):
    from dranspose.core.coordination import Progress, ScanInfo
    from dranspose.http.dashboard import _state

    scan = ScanInfo(scan_id="s", streams=[], workers=[], n_events=3, stopped=stopped)
    progress = Progress(scan_id="s", total=3, finished=finished, reducer_finished=reducer_finished)
    assert _state(scan, progress) == state


def test_rate_meter_uses_the_recent_window_and_starts_over_per_scan():
    from dranspose.http.dashboard import RATE_WINDOW_SECONDS, RateMeter

    meter = RateMeter()
    assert meter.rate("a", 0, 100.0) is None  # one sample: no rate yet
    assert meter.rate("a", 10, 100.2) is None  # too short a span to tell
    assert meter.rate("a", 50, 102.0) == pytest.approx(25.0)
    # samples older than the window drop out: the rate follows the recent pace
    later = 102.0 + RATE_WINDOW_SECONDS + 1.0
    meter.rate("a", 200, later - 1.0)
    assert meter.rate("a", 210, later) == pytest.approx(10.0)
    assert meter.rate("b", 5, later + 1.0) is None  # a new scan starts without samples


@pytest.fixture(scope="module")
def reads_protected_api(system: System) -> str:
    """A second controller (own prefix, same Redis) that wants the token on reads too."""
    port = free_port()
    system.start(
        "controller",
        "--prefix",
        "reads-protected",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--protect-reads",
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(url + "/healthz").status_code == 200, 60, "second controller")
    return url


def test_page_of_a_read_protected_controller_asks_for_the_token(
    browser_context, reads_protected_api
):
    page = browser_context.new_page()
    try:
        page.goto(reads_protected_api + "/")  # the page itself loads without a token
        page.wait_for_selector("#connection.bad")
        assert "401 Unauthorized" in page.inner_text("#connection")
        assert "requires an access token" in page.inner_text("#connection")
        page.fill("#token", TOKEN)
        page.click("#token-save")
        page.wait_for_selector("#connection.ok")
        # what only an authorised read shows: the controller's own registry entry
        page.wait_for_selector('#components tr[data-kind="controller"]')
    finally:
        page.close()

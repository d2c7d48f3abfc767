"""``/docs`` of the controller and the reducer works without internet.

FastAPI's default page loads Swagger UI from a CDN and stays blank on an isolated beamline
network. Ours loads every script, style and icon from the app itself: checked in the HTML (no
absolute URL, every asset served), and in a real chromium whose requests to any other host are
refused, where the page must render the API's operations with no failed request. ``/redoc`` is
not served (ReDoc's bundle fetches its logo from its vendor's CDN).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any, Iterator

import pytest

from dranspose.core.parameters import ParameterSet
from dranspose.http.controller_api import create_app as create_controller_app
from dranspose.http.reducer_api import create_app
from dranspose.io.store import Store
from dranspose.runtime.controller import Controller
from dranspose.tools.serving import serve_in_thread
from tests.ports import free_port
from tests.support.asgi import AppClient
from tests.support.browser import chromium_context


class _Host:
    """The least a reducer app needs: a payload with a ``publish`` tree, no parameters."""

    class _Reducer:
        publish = {"values": [1, 2, 3]}

    reducer = _Reducer()
    parameters = ParameterSet({}, {})

    def set_parameter(self, name: str, data: bytes) -> ParameterSet:
        raise KeyError(name)

    def status(self) -> dict[str, Any]:
        return {}


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def _asset_urls(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    # Swagger UI's page also names its script URLs inside an inline script
    inline = re.findall(r"""url: ['"]([^'"]+)['"]""", html)
    return parser.urls + inline


@pytest.fixture(scope="module")
def apps(redis_url: str) -> Iterator[dict[str, AppClient]]:
    store = Store(redis_url, prefix="offline-docs")
    controller = AppClient(create_controller_app(Controller(store)))
    reducer = AppClient(create_app(_Host()))
    yield {"controller": controller, "reducer": reducer}
    reducer.close()
    controller.close(store.close)


@pytest.mark.parametrize("which", ["controller", "reducer"])
def test_docs_page_names_only_its_own_assets(apps, which):
    client, page = apps[which], "/docs"
    assert client.get("/redoc").status_code == 404
    response = client.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    urls = _asset_urls(response.text)
    assert any(u.endswith(".js") for u in urls), urls
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"{which}{page} loads {url} from elsewhere"
        served = client.get(url)
        assert served.status_code == 200, (url, served.status_code)
        if url.endswith(".js"):
            assert len(served.content) > 100_000, f"{url} is not the UI's bundle"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium_context("the offline docs' browser tests") as context:
        yield context


def test_docs_page_renders_with_no_network(browser):
    page, rendered = "/docs", ".opblock"
    port = free_port()
    server = serve_in_thread(create_app(_Host()), port=port)
    base = f"http://127.0.0.1:{port}"
    tab = browser.new_page()
    failed: list[str] = []
    errors: list[str] = []
    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(base):
            route.continue_()
        else:  # the isolated network: nothing else answers
            elsewhere.append(route.request.url)
            route.abort()

    try:
        tab.route("**/*", only_this_server)
        tab.on("requestfailed", lambda request: failed.append(request.url))
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(base + page)
        tab.wait_for_selector(rendered)
        # the reducer's own routes are listed (the page read the app's OpenAPI document)
        assert tab.get_by_text("/api/v1/result/pickle").count() >= 1
        assert (elsewhere, failed, errors) == ([], [], [])
    finally:
        tab.close()
        server.stop()

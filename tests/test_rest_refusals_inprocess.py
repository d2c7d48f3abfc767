"""The controller's trigger-map refusals as route logic: the app called in-process, no port.

The same ``INVALID`` table the trigger-map unit tests use, and the bodies that are not maps at all,
posted to ``/api/v1/sequence`` of a controller app with no components registered: each is a 422
with the very message, and none of them starts a scan. ``tests/test_rest_refusals.py`` posts the
same maps to a controller running as a process and then runs a scan on it.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from dranspose.http.controller_api import create_app
from dranspose.io.store import Store
from dranspose.runtime.controller import Controller
from tests.support.asgi import AppClient
from tests.support.triggermaps import INVALID

NOT_MAPS = {
    "empty body": (b"", "trigger map is not valid JSON: Expecting value at line 1 column 1"),
    "null": (
        "null",
        "trigger map must be a JSON object with 'parts' and 'sequence', got a JSON null",
    ),
    "a list": (
        "[1, 2]",
        "trigger map must be a JSON object with 'parts' and 'sequence', got a JSON array",
    ),
    "not UTF-8": (
        b'{"parts": "\xff"}',
        "trigger map is not UTF-8 text: invalid start byte at byte 11",
    ),
    "empty object": ({}, "missing field 'parts'; missing field 'sequence'"),
}


@pytest.fixture(scope="module")
def app(redis_url: str) -> Iterator[AppClient]:
    store = Store(redis_url, prefix="refusals-in-process")
    client = AppClient(create_app(Controller(store)))
    yield client
    client.close(store.close)


def post_map(app: AppClient, body: object) -> tuple[int, str]:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    response = app.post("/api/v1/sequence", content=content)
    return response.status_code, response.json()["detail"]


@pytest.mark.parametrize("raw, message", INVALID.values(), ids=INVALID.keys())
def test_invalid_map_shape_is_a_422_naming_the_place(app, raw, message):
    assert post_map(app, raw) == (422, message)


@pytest.mark.parametrize("raw, message", NOT_MAPS.values(), ids=NOT_MAPS.keys())
def test_a_body_that_is_no_map_is_a_422_saying_why(app, raw, message):
    assert post_map(app, raw) == (422, message)


def test_no_refused_map_started_a_scan(app):
    for raw, _ in [*INVALID.values(), *NOT_MAPS.values()]:
        post_map(app, raw)
    response = app.get("/api/v1/status")
    assert response.status_code == 200
    assert response.json()["scan_id"] is None and response.json()["active"] is False

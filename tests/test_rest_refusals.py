"""Bad trigger maps and bad parameter values over REST, against the controller as a process.

Every invalid map shape the trigger-map unit tests know (``tests/support/triggermaps.py``,
``INVALID``) is posted to ``/api/v1/sequence`` and must be refused with 422 and the very message the unit test
expects, which names the part, stream and event at fault; so must maps that only the running
system can judge (tags no worker has, streams no ingester serves) and bodies that are not maps at
all. Parameters: values of the wrong type, values over the size limit and undeclared names get a
precise 4xx. Afterwards the same controller runs a scan to the end.
"""

from __future__ import annotations

import json

import httpx
import pytest

from dranspose.core.parameters import MAX_PARAMETER_BYTES
from tests.badinput_servers import run_scan, running_pipeline
from tests.conftest import raw_xrd_events
from tests.support.triggermaps import INVALID


@pytest.fixture(scope="module")
def servers():
    with running_pipeline() as running:
        yield running


@pytest.fixture(scope="module")
def client(servers):
    with httpx.Client(base_url=servers.controller_url, timeout=30) as c:
        yield c


def post_map(client: httpx.Client, body) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/v1/sequence", content=content)


@pytest.mark.parametrize("raw, message", INVALID.values(), ids=INVALID.keys())
def test_invalid_map_shape_is_a_422_naming_the_place(client, raw, message):
    response = post_map(client, raw)
    assert response.status_code == 422
    assert response.json()["detail"] == message


def vw(constraint, tags=("generic",)):
    return {"tags": list(tags), "constraint": constraint}


SYSTEM_REFUSALS = {
    "tags no worker has": (
        {"parts": {"main": {"xrd": [[vw(0)], [vw(1, ["gpu"])]]}}, "sequence": ["main"]},
        "stream 'xrd', event 2 (part 'main', event 1): no registered worker has all the tags "
        "['gpu']; registered: 'w0' ['generic']",
    ),
    "stream without ingester": (
        {"parts": {"main": {"xrd": [[vw(0)]], "orca": [[vw(0)]]}}, "sequence": ["main"]},
        "stream(s) 'orca' have no registered ingester (served: 'xrd'); the scan could not end",
    ),
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
    "empty object": ({}, "missing field 'parts'"),
}


@pytest.mark.parametrize("raw, message", SYSTEM_REFUSALS.values(), ids=SYSTEM_REFUSALS.keys())
def test_map_the_running_system_cannot_serve_is_a_422_saying_why(client, raw, message):
    response = post_map(client, raw)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(message)


WRONG_TYPES = {
    "count": (b"2.5", "int"),
    "threshold": (b"abc", "float"),
    "enabled": (b"maybe", "bool"),
    "label": (b"\xff\xfe", "UTF-8 text"),
}


@pytest.mark.parametrize("name", WRONG_TYPES)
def test_parameter_of_the_wrong_type_is_a_422_naming_parameter_value_and_type(client, name):
    raw, dtype = WRONG_TYPES[name]
    before = client.get(f"/api/v1/parameter/{name}").content
    response = client.post(f"/api/v1/parameter/{name}", content=raw)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert f"parameter {name!r}" in detail and repr(raw)[2:-1] in detail and dtype in detail
    assert client.get(f"/api/v1/parameter/{name}").content == before  # nothing was set


def test_oversized_parameter_is_a_422_stating_the_limit(client):
    response = client.post("/api/v1/parameter/mask", content=b"\x00" * (MAX_PARAMETER_BYTES + 1))
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"parameter 'mask': value of {MAX_PARAMETER_BYTES + 1} bytes exceeds the limit of "
        f"{MAX_PARAMETER_BYTES} bytes"
    )


def test_parameter_at_the_limit_is_accepted(client):
    value = b"\x01" * MAX_PARAMETER_BYTES
    assert client.post("/api/v1/parameter/mask", content=value).status_code == 200
    assert client.get("/api/v1/parameter/mask").content == value
    assert client.post("/api/v1/parameter/mask", content=b"\x00\x01").status_code == 200


def test_undeclared_parameter_is_stored_as_raw_bytes_within_the_limit(client):
    # as the original dranspose: payloads read it as parameters["tresh"].data
    assert client.get("/api/v1/parameter/tresh").status_code == 404
    oversized = client.post("/api/v1/parameter/tresh", content=b"\x00" * (MAX_PARAMETER_BYTES + 1))
    assert oversized.status_code == 422
    assert oversized.json()["detail"] == (
        f"parameter 'tresh': value of {MAX_PARAMETER_BYTES + 1} bytes exceeds the limit of "
        f"{MAX_PARAMETER_BYTES} bytes"
    )
    response = client.post("/api/v1/parameter/tresh?full=true", content=b"1")
    assert response.status_code == 200 and response.json()["declared"] is False
    assert client.get("/api/v1/parameter/tresh").content == b"1"


def test_controller_runs_a_scan_after_all_refusals(servers, client):
    # module order: this runs after the refusals above, on the same controller and Redis
    progress = run_scan(servers, [frames for _, frames in raw_xrd_events()])
    assert progress["completed"] == progress["total"] == 11
    assert progress["failed"] == [] and progress["lost"] == []

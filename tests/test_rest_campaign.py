"""Schema-driven bad input against the running controller and reducer (schemathesis).

Both servers run as real processes with a real Redis behind them and have finished one scan, so
the reducer's ``publish`` tree and HDF5 domain hold data. Every generated request must get an
answer below 500, and every 4xx a ``detail`` sentence. ``DRANSPOSE_REST_EXAMPLES`` sets the
requests per operation and pass (default 5, with path parameters fixed to one existing name
each, a quick check); ``bench/badinput.py rest`` runs the
full campaign of more than 1,000 requests per server.
"""

from __future__ import annotations

import os

import httpx
import pytest

from tests.badinput_servers import run_scan, running_pipeline
from tests.conftest import raw_xrd_events
from tests.rest_campaign import Tally, run_campaign

EXAMPLES = int(os.environ.get("DRANSPOSE_REST_EXAMPLES", "5"))
KNOWN = 1 if "DRANSPOSE_REST_EXAMPLES" not in os.environ else None
"""The quick check fixes each path parameter to one existing name; a chosen size to all."""


@pytest.fixture(scope="module")
def servers():
    with running_pipeline() as running:
        progress = run_scan(running, [frames for _, frames in raw_xrd_events()])
        assert progress["completed"] == progress["total"] == 11
        yield running


@pytest.mark.parametrize("server", ["controller", "reducer"])
def test_generated_requests_get_no_5xx_and_every_4xx_a_message(servers, server):
    url = servers.controller_url if server == "controller" else servers.reducer_url
    tally = run_campaign(url, EXAMPLES, Tally(), known_per_parameter=KNOWN)
    print(f"{server}: {tally.summary()}")
    assert tally.problems == []
    assert tally.requests >= 10 * EXAMPLES
    assert not any(status >= 500 for status in tally.statuses)


def test_query_of_the_wrong_type_is_a_422_sentence_naming_the_parameter(servers):
    response = httpx.get(f"{servers.controller_url}/api/v1/logs", params={"limit": "many"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("query parameter 'limit': ")
    assert "integer" in detail and "'many'" in detail


def test_out_of_range_query_names_the_bound(servers):
    response = httpx.get(f"{servers.controller_url}/api/v1/logs", params={"limit": "0"})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "query parameter 'limit': Input should be greater than or equal to 1 (got '0')"
    )


def test_servers_answer_normally_after_the_campaign(servers):
    # runs after the campaign in file order: nothing it sent broke the services
    assert httpx.get(f"{servers.controller_url}/healthz").status_code == 200
    assert httpx.get(f"{servers.reducer_url}/api/v1/result/scalar").json() == 7
    progress = run_scan(servers, [frames for _, frames in raw_xrd_events()])
    assert progress["completed"] == 11 and progress["failed"] == []

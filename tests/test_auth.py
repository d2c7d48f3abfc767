"""The bearer token (docs/security.md): the guard's route logic in-process, its plumbing over
real HTTP against real processes.

The refusals, what stays open and the OpenAPI scheme are checked against the controller and
replay apps called in-process (no port), one app per access policy. Two controllers run as
processes on one private Redis, each under its own prefix: one started with ``--token`` (reads
open), served by a worker and an ingester so a scan can really start there, and one with
``$DRANSPOSE_TOKEN`` and ``$DRANSPOSE_TOKEN_READS`` (reads protected); the distributed reducer
runs as a process reading the token from its environment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from dranspose.cli.settings import Settings
from dranspose.core.triggermap import TriggerMap
from dranspose.http.auth import AccessPolicy, bearer_headers
from dranspose.http.controller_api import create_app as create_controller_app
from dranspose.http.reducer_api import ReplayHost, create_app
from dranspose.io.local_redis import PrivateRedis
from dranspose.io.store import Store
from dranspose.runtime.controller import Controller
from dranspose.tools.replay import ReplayScan
from tests.payloads.gated import PublishReducer, ScaleWorker
from tests.ports import free_port
from tests.support.asgi import AppClient
from tests.support.processes import Processes, wait_until

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "s3cret-token-for-tests"
RIGHT = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer not-the-token"}
NO_TOKEN: dict[str, str] = {}

CONTROLLER_WRITES = [
    (
        "/api/v1/sequence",
        json.dumps(TriggerMap.simple(["s"], 3).request.model_dump(mode="json")).encode(),
    ),
    ("/api/v1/parameter/scale", b"5"),
    ("/api/v1/stop", b""),
]
CONTROLLER_READS = [
    "/api/v1/status",
    "/api/v1/progress",
    "/api/v1/config",
    "/api/v1/load",
    "/api/v1/scan",
    "/api/v1/parameters",
    "/api/v1/logs",
    "/metrics",
    "/",
]


@dataclass
class Controllers:
    """The processes: the token reaches them from the command line and the environment."""

    guarded: httpx.Client
    """``--token``: mutating endpoints guarded, reads open; a worker and an ingester"""
    reads_guarded: httpx.Client
    """``$DRANSPOSE_TOKEN`` and ``$DRANSPOSE_TOKEN_READS=1``"""
    reducer: httpx.Client
    """the distributed reducer with ``$DRANSPOSE_TOKEN``"""


@dataclass
class Apps:
    """Controller apps called in-process (tests/support/asgi.py), one per access policy: the
    route logic of the guard, without a port."""

    guarded: AppClient
    """mutating endpoints guarded, reads open"""
    reads_guarded: AppClient
    """reads protected too"""
    open: AppClient
    """no token"""


@pytest.fixture(scope="module")
def controllers() -> Iterator[Controllers]:
    with PrivateRedis() as redis_server:
        procs = Processes(ROOT, redis_server.url)
        procs.env.pop("DRANSPOSE_TOKEN", None)
        procs.env.pop("DRANSPOSE_TOKEN_READS", None)
        ports = [free_port() for _ in range(3)]
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=10) for p in ports]
        plain = dict(procs.env)
        try:
            procs.start(
                "controller",
                "--prefix",
                "guarded",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports[0]),
                "--token",
                TOKEN,
            )
            procs.start(
                "worker",
                "--prefix",
                "guarded",
                "--name",
                "w0",
                "--class",
                "tests.payloads.gated:ScaleWorker",
            )
            procs.start(
                "ingester",
                "--prefix",
                "guarded",
                "--stream",
                "s",
                "--upstream",
                f"tcp://127.0.0.1:{free_port()}",
            )
            procs.env = {**plain, "DRANSPOSE_TOKEN": TOKEN, "DRANSPOSE_TOKEN_READS": "1"}
            procs.start(
                "controller", "--prefix", "reads", "--host", "127.0.0.1", "--port", str(ports[1])
            )
            procs.env = {**plain, "DRANSPOSE_TOKEN": TOKEN}
            procs.start(
                "reducer",
                "--prefix",
                "reducer",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports[2]),
                "--class",
                "tests.payloads.gated:PublishReducer",
            )
            procs.env = plain
            guarded = clients[0]
            wait_until(
                lambda: any(p["name"] == "scale" for p in guarded.get("/api/v1/parameters").json()),
                60,
                "the worker's parameter declaration",
            )
            wait_until(
                lambda: (
                    {c["kind"] for c in guarded.get("/api/v1/config").json()["components"]}
                    >= {"worker", "ingester"}
                ),
                60,
                "worker and ingester registration",
            )
            for client in clients[1:]:
                wait_until(lambda: client.get("/healthz").status_code == 200, 60, "healthz")  # noqa: B023
            yield Controllers(*clients)
        finally:
            for client in clients:
                client.close()
            procs.stop_all()


@pytest.fixture(scope="module")
def apps(redis_url: str) -> Iterator[Apps]:
    """One controller app per policy, each with its own Redis prefix; no lifespan, no scan."""
    policies = {
        "guarded": AccessPolicy.create(TOKEN, protect_reads=False),
        "reads_guarded": AccessPolicy.create(TOKEN, protect_reads=True),
        "open": AccessPolicy.create(None),
    }
    clients: dict[str, AppClient] = {}
    stores: list[Store] = []
    try:
        for name, policy in policies.items():
            stores.append(Store(redis_url, prefix=f"app-{name}"))
            clients[name] = AppClient(create_controller_app(Controller(stores[-1]), policy))
        yield Apps(**clients)
    finally:
        for client, store in zip(clients.values(), stores):
            client.close(store.close)


def assert_refused(response: httpx.Response, wrong: bool) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) is wrong
    detail = response.json()["detail"]
    assert (
        "not the one this server was given" if wrong else "Authorization: Bearer <token>"
    ) in detail


# -- the controller ---------------------------------------------------------------------------


@pytest.mark.parametrize("path,body", CONTROLLER_WRITES, ids=[p for p, _ in CONTROLLER_WRITES])
def test_controller_refuses_a_mutating_request_without_token(apps, path, body):
    assert_refused(apps.guarded.post(path, content=body), wrong=False)


@pytest.mark.parametrize("path,body", CONTROLLER_WRITES, ids=[p for p, _ in CONTROLLER_WRITES])
def test_controller_refuses_a_mutating_request_with_a_wrong_token(apps, path, body):
    assert_refused(apps.guarded.post(path, content=body, headers=WRONG), wrong=True)


def test_other_authorization_schemes_count_as_no_token(apps):
    response = apps.guarded.post("/api/v1/stop", headers={"Authorization": f"Basic {TOKEN}"})
    assert_refused(response, wrong=False)


def test_a_refused_parameter_keeps_its_value(controllers):
    before = controllers.guarded.get("/api/v1/parameter/scale").content
    controllers.guarded.post("/api/v1/parameter/scale", content=b"99", headers=WRONG)
    assert controllers.guarded.get("/api/v1/parameter/scale").content == before


def test_controller_sets_a_parameter_with_the_token(controllers):
    response = controllers.guarded.post("/api/v1/parameter/scale", content=b"7", headers=RIGHT)
    assert response.status_code == 200, response.text
    assert controllers.guarded.get("/api/v1/parameter/scale").content == b"7"


def test_controller_starts_and_stops_a_scan_with_the_token(controllers):
    sequence = dict(CONTROLLER_WRITES)["/api/v1/sequence"]
    started = controllers.guarded.post("/api/v1/sequence", content=sequence, headers=RIGHT)
    assert started.status_code == 200, started.text
    scan_id = started.json()
    assert controllers.guarded.get("/api/v1/status").json()["scan_id"] == scan_id
    stopped = controllers.guarded.post("/api/v1/stop?full=true", headers=RIGHT)
    assert stopped.status_code == 200
    assert stopped.json() == {"scan_id": scan_id, "stopped": True}


@pytest.mark.parametrize("path", CONTROLLER_READS)
def test_controller_reads_stay_open_by_default(apps, path):
    assert apps.guarded.get(path).status_code == 200


def test_a_declared_parameter_and_healthz_read_without_token_from_the_process(controllers):
    """Routes whose answer needs the running pipeline (the worker's declaration, the lock)."""
    assert controllers.guarded.get("/api/v1/parameter/scale").status_code == 200
    assert controllers.guarded.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/v1/status", "/api/v1/config", "/metrics", "/api/v1/logs", "/api/v1/log_stream"]
)
def test_controller_reads_need_the_token_when_protected(apps, path):
    assert_refused(apps.reads_guarded.get(path), wrong=False)


def test_protected_reads_answer_with_the_token(controllers):
    """The process read $DRANSPOSE_TOKEN and $DRANSPOSE_TOKEN_READS from its environment."""
    assert_refused(controllers.reads_guarded.get("/api/v1/status"), wrong=False)
    response = controllers.reads_guarded.get("/api/v1/status", headers=RIGHT)
    assert response.status_code == 200
    assert response.json()["active"] is False


@pytest.mark.parametrize("path", ["/", "/dashboard/app.js"])
def test_the_dashboard_page_stays_open_when_reads_are_protected(apps, path):
    assert apps.reads_guarded.get(path).status_code == 200


def test_healthz_stays_open_when_reads_are_protected(controllers):
    # a running controller's health (the in-process app holds no lock: it answers 503)
    assert controllers.reads_guarded.get("/healthz").status_code == 200


def test_without_a_token_everything_is_open_as_before(apps):
    assert apps.open.post("/api/v1/stop").status_code == 200
    assert apps.open.get("/api/v1/status").status_code == 200
    # reaching the handler: a parameter never set nor declared is 404, not 401
    assert apps.open.get("/api/v1/parameter/nope").status_code == 404


def test_openapi_schema_declares_the_bearer_scheme(apps):
    schema = apps.open.get("/openapi.json").json()
    (scheme,) = schema["components"]["securitySchemes"].values()
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}


# -- the distributed reducer ------------------------------------------------------------------


def test_distributed_reducer_refuses_a_parameter_post_without_token(controllers):
    assert_refused(
        controllers.reducer.post("/api/v1/parameter/threshold", content=b"1"), wrong=False
    )


def test_distributed_reducer_lets_the_token_through_to_its_answer(controllers):
    response = controllers.reducer.post("/api/v1/parameter/threshold", content=b"1", headers=RIGHT)
    # its parameters are set through the controller: the handler's own 404 explains that
    assert response.status_code == 404
    assert "through the controller" in response.json()["detail"]


# -- the replay's reducer API -----------------------------------------------------------------


def serve_replay(policy: AccessPolicy) -> Iterator[AppClient]:
    """The app ``dranspose replay --port`` serves, called in-process (no port: the guard is
    route logic; tests/test_replay_http.py serves it over real HTTP)."""
    run = ReplayScan(ScaleWorker, PublishReducer, nworkers=1)
    with AppClient(create_app(ReplayHost(run), access=policy)) as client:
        yield client


@pytest.fixture(scope="module")
def replay_api() -> Iterator[AppClient]:
    yield from serve_replay(AccessPolicy.create(TOKEN, protect_reads=False))


@pytest.fixture(scope="module")
def replay_api_reads() -> Iterator[AppClient]:
    yield from serve_replay(AccessPolicy.create(TOKEN, protect_reads=True))


@pytest.mark.parametrize(
    "headers,wrong", [(NO_TOKEN, False), (WRONG, True)], ids=["missing", "wrong"]
)
def test_replay_api_refuses_a_parameter_post(replay_api, headers, wrong):
    response = replay_api.post("/api/v1/parameter/scale", content=b"4", headers=headers)
    assert_refused(response, wrong=wrong)
    assert replay_api.get("/api/v1/parameter/scale").content == b"2"


def test_replay_api_sets_a_parameter_with_the_token(replay_api):
    response = replay_api.post("/api/v1/parameter/threshold", content=b"0.75", headers=RIGHT)
    assert response.status_code == 200, response.text
    assert replay_api.get("/api/v1/parameter/threshold").content == b"0.75"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/result/", "/api/v1/result/pickle", "/api/v1/status", "/api/v1/parameters", "/"],
)
def test_replay_api_reads_stay_open_by_default(replay_api, path):
    assert replay_api.get(path).status_code == 200


def test_hdf5_query_posts_are_reads(replay_api):
    """h5pyd asks for several links in one POST; it changes nothing, so needs no token."""
    root = replay_api.get("/").json()["root"]
    response = replay_api.post(f"/groups/{root}/links", json={"titles": ["values"]})
    assert response.status_code == 200
    assert [link["title"] for link in response.json()["links"]] == ["values"]


@pytest.mark.parametrize("path", ["/api/v1/result/", "/api/v1/status", "/"])
def test_replay_api_reads_need_the_token_when_protected(replay_api_reads, path):
    assert_refused(replay_api_reads.get(path), wrong=False)
    assert replay_api_reads.get(path, headers=RIGHT).status_code == 200


def test_hdf5_query_posts_need_the_token_when_reads_are_protected(replay_api_reads):
    root = replay_api_reads.get("/", headers=RIGHT).json()["root"]
    assert_refused(replay_api_reads.post(f"/groups/{root}/links", json={}), wrong=False)


def test_replay_api_healthz_stays_open_when_reads_are_protected(replay_api_reads):
    assert replay_api_reads.get("/healthz").status_code == 200


# -- the policy --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_an_empty_token_means_no_protection(monkeypatch, value):
    assert not AccessPolicy.create(value).enabled
    monkeypatch.setenv("DRANSPOSE_TOKEN", value)
    assert not Settings().access().enabled


def test_a_token_from_a_secret_file_loses_its_newline(monkeypatch):
    assert AccessPolicy.create(f"{TOKEN}\n").accepts(TOKEN)
    monkeypatch.setenv("DRANSPOSE_TOKEN", f"{TOKEN}\n")
    assert Settings().access().accepts(TOKEN)


@pytest.mark.parametrize(
    "value,expected",
    [("1", True), ("true", True), ("ON", True), ("0", False), ("", False), ("no", False)],
)
def test_protect_reads_variable(monkeypatch, value, expected):
    monkeypatch.setenv("DRANSPOSE_TOKEN_READS", value)
    assert Settings().access(token=TOKEN).protect_reads is expected


def test_options_win_over_the_variables(monkeypatch):
    monkeypatch.setenv("DRANSPOSE_TOKEN", "from-the-environment")
    monkeypatch.setenv("DRANSPOSE_TOKEN_READS", "1")
    policy = Settings().access(token=TOKEN, protect_reads=False)
    assert policy.accepts(TOKEN) and not policy.protect_reads
    assert Settings().access(protect_reads=None).protect_reads


def test_our_clients_send_the_token_from_the_environment(monkeypatch):
    monkeypatch.setenv("DRANSPOSE_TOKEN", TOKEN)
    assert Settings().client_headers() == RIGHT
    monkeypatch.delenv("DRANSPOSE_TOKEN")
    assert Settings().client_headers() == {}
    assert bearer_headers(TOKEN) == RIGHT and bearer_headers(None) == {}


def test_an_app_is_open_unless_given_a_policy():
    """No module reads the token behind the command line's back (docs/security.md)."""
    from fastapi import FastAPI

    from dranspose.http.auth import apply_policy, guard

    app = guard(FastAPI())
    assert not app.state.access_policy.enabled
    apply_policy(app, AccessPolicy.create(TOKEN))
    assert app.state.access_policy.accepts(TOKEN) and not app.state.access_policy.accepts(None)


def test_the_token_is_not_shown_in_the_policy_repr():
    assert TOKEN not in repr(AccessPolicy.create(TOKEN))
    assert TOKEN not in repr(Settings(token=TOKEN))

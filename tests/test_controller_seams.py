"""The pieces the controller and its app were split into: the scan account's recovery, the
controller's parameters (real Redis), the app over a stand-in host, and the serving helper."""

from __future__ import annotations

import asyncio
from typing import Optional

import httpx
import pytest

from dranspose.core.controller_parameters import merge_declarations
from dranspose.core.coordination import AssignedEvent, ComponentInfo, ComponentKind, ScanInfo
from dranspose.core.parameters import ParameterError
from dranspose.core.protocol import EventNumber, StreamName, WorkerName
from dranspose.core.scan_account import ScanAccount
from dranspose.core.triggermap import TriggerMap
from dranspose.http.controller_api import create_app
from dranspose.io.store import Store
from dranspose.runtime.controller_parameters import ControllerParameters
from dranspose.tools.serving import serve_in_thread, served
from tests.ports import free_port
from tests.support.asgi import AppClient


def _assigned(event: int, *workers: str) -> AssignedEvent:
    return AssignedEvent(
        event_number=EventNumber(event),
        streams={StreamName("s"): [WorkerName(w) for w in workers]},
    )


def test_a_recovered_scan_is_aborted_and_waits_only_for_what_was_released():
    scan = ScanInfo(scan_id="s1", streams=["s"], workers=["w0"], n_events=5)
    released = [_assigned(0, "w0"), _assigned(1), _assigned(2, "w0")]
    run = ScanAccount.recover(scan, released, "replaced")
    assert run.assigner is None and run.scan.aborted == "replaced" and run.scan.stopped
    assert run.progress.completed == 1  # event 1 had no destination: settled at once
    run.completed(WorkerName("w0"), 0)
    assert run.progress.completed == 2
    run.close()
    assert sorted(run.progress.lost) == [2, 3, 4]


def test_declarations_merge_by_name_the_later_component_wins():
    merged = merge_declarations(
        {
            "worker:a": [{"name": "x", "dtype": "int"}, {"name": "y", "dtype": "str"}],
            "reducer:r": [{"name": "x", "dtype": "float"}],
        }
    )
    assert merged == {"x": {"name": "x", "dtype": "float"}, "y": {"name": "y", "dtype": "str"}}


def test_one_way_to_set_a_value_with_the_rules_of_the_module(redis_url, caplog):
    async def scenario() -> None:
        store = Store(redis_url, "controller-parameters")
        try:
            await store.set_descriptions(
                "worker:w", [{"name": "till", "dtype": "int", "default": 3}]
            )
            board = ControllerParameters(store)
            with pytest.raises(ParameterError, match="'till'"):
                await board.set("till", b"three")  # a declared one must parse
            update = await board.set("till", b"7")
            assert (update.value, update.declared) == (7, True)
            raw = await board.set("poni", b"\x00\x01")  # undeclared: raw bytes
            assert (raw.value, raw.declared) == (None, False)
            assert "declared by no worker" in caplog.text
            state = await board.state()
            assert state.values == {"till": b"7", "poni": b"\x00\x01"}
            assert state.hash == raw.parameters_hash != ""
            assert board.default_bytes("till", state.declared) == b"3"
            assert board.default_bytes("nothing", state.declared) is None
            # what was set comes back after Redis forgot it
            await store.redis.flushdb()
            await board.restore()
            assert (await store.get_parameters())[1] == {"till": b"7", "poni": b"\x00\x01"}
            # a parameter file is only held to the size limit: the declarations may come later
            assert await board.set_initial({"till": b"not yet declared"}) > 0
        finally:
            await store.redis.flushdb()
            await store.close()

    asyncio.run(scenario())


class StandInHost:
    """A ControllerHost that is no controller: the routes need only the seam."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.info = ComponentInfo(kind=ComponentKind.controller, name="stand-in")
        self.owner = "stand-in-1"
        self.acquired = False
        self.run_state: Optional[ScanAccount] = None
        self.released_events = 0
        self.parameters = ControllerParameters(store)
        self.started: list[TriggerMap] = []

    async def start_scan(self, trigger_map: TriggerMap, retry_lost: Optional[bool] = None):
        self.started.append(trigger_map)
        scan = ScanInfo(scan_id="s1", streams=list(trigger_map.streams), workers=[], n_events=3)
        self.run_state = ScanAccount(scan, None, trigger_map.request, {})
        return scan

    async def stop_scan(self) -> None:
        if self.run_state is not None:
            self.run_state.stop()


def test_the_app_serves_any_controller_host(redis_url):
    store = Store(redis_url, "stand-in")
    host = StandInHost(store)
    client = AppClient(create_app(host))
    try:
        body = '{"parts": {"p": {"s": [[{"tags": ["generic"]}]]}}, "sequence": ["p"]}'
        assert client.post("/api/v1/sequence", content=body).json() == "s1"
        assert len(host.started) == 1  # parsed once, handed over as the map itself
        assert client.get("/api/v1/progress").json()["total_events"] == 3
        assert client.get("/api/v1/load").json() == {}
        assert client.get("/healthz").status_code == 503  # the stand-in holds no lock
        assert client.post("/api/v1/parameter/x", content=b"1").status_code == 200
        assert client.get("/api/v1/parameter/x").content == b"1"
    finally:
        client.close(store.close)


def test_serving_helpers_serve_and_stop():
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    port = free_port()
    running = serve_in_thread(app, port=port)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/ping").json() == "pong"
        with pytest.raises(OSError, match="cannot serve the test app"):
            serve_in_thread(app, port=port, what="the test app", timeout=5)
    finally:
        running.stop()

    async def in_loop() -> str:
        other = free_port()
        async with served(app, "127.0.0.1", other):
            async with httpx.AsyncClient() as client:
                for _ in range(100):
                    try:
                        return (await client.get(f"http://127.0.0.1:{other}/ping")).json()
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
        return "never served"

    assert asyncio.run(in_loop()) == "pong"

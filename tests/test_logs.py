"""Log records: the structured stdout line, the Redis log handler, the logs API and its event stream.

Everything runs against a real private Redis and real HTTP servers; the outage tests stop that
Redis under a running component.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import threading
import time
from typing import Any, AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from dranspose.core.coordination import ComponentInfo, ComponentKind
from dranspose.core.logs import LogEntry
from dranspose.core.triggermap import TriggerMap
from dranspose.http.controller_api import create_app
from dranspose.http.logs_api import logs_router
from dranspose.io.local_redis import PrivateRedis
from dranspose.io.store import Store
from dranspose.runtime.component import Component
from dranspose.runtime.controller import Controller
from dranspose.runtime.logs import StructuredFormatter, bind_component, unbind_component
from tests.conftest import XRD_CAPTURE
from tests.pipeline import Pipeline, free_port, push_capture, request_json, wait_for

LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?P<level>[A-Z]+) (?P<component>\S+) "
    r"(?P<logger>\S+): (?P<message>.*)$"
)


# -- the structured stdout line ------------------------------------------------------------------


def make_record(message: str, exc_info: Any = None) -> logging.LogRecord:
    return logging.LogRecord(
        "dranspose.worker", logging.WARNING, __file__, 1, message, (), exc_info
    )


def test_structured_line_names_time_level_component_and_logger():
    formatter = StructuredFormatter("fallback")
    token = bind_component("worker-1")
    try:
        line = formatter.format(make_record("queue is full"))
    finally:
        unbind_component(token)
    match = LINE.match(line)
    assert match, line
    assert match.groupdict() == {
        "level": "WARNING",
        "component": "worker-1",
        "logger": "dranspose.worker",
        "message": "queue is full",
    }


def test_structured_line_without_a_bound_component_uses_the_process_name():
    line = StructuredFormatter("controller").format(make_record("hello"))
    assert LINE.match(line).group("component") == "controller"


def test_traceback_continues_on_indented_lines():
    try:
        raise KeyError("missing")
    except KeyError:
        record = make_record("event 3 failed", sys.exc_info())
    lines = StructuredFormatter("w").format(record).split("\n")
    assert LINE.match(lines[0]).group("message") == "event 3 failed"
    assert len(lines) > 2 and all(line.startswith("    ") for line in lines[1:])
    assert lines[-1].strip() == "KeyError: 'missing'"


# -- the logs API over known records -------------------------------------------------------------

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def known_entries(n: int = 40) -> list[LogEntry]:
    base = 1_700_000_000.0
    return [
        LogEntry(
            time=base + i,
            component=f"c{i % 2}",
            level=LEVELS[i % 4],
            levelno=logging.getLevelName(LEVELS[i % 4]),
            logger="tests.known",
            message=f"record {i}",
        )
        for i in range(n)
    ]


class ThreadServer:
    """A FastAPI app on a free port, served by uvicorn in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def known_api(redis_url):
    """The logs API over 40 known records (two components, four levels, one second apart)."""
    entries = known_entries()

    async def fill() -> None:
        store = Store(redis_url, prefix="known")
        await store.redis.delete(store.key("logs"))
        await store.append_logs([e.model_dump_json() for e in entries])
        await store.close()

    asyncio.run(fill())
    app = FastAPI()
    app.include_router(logs_router(Store(redis_url, prefix="known")))
    with ThreadServer(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client, entries


def messages(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["message"] for r in response.json()]


def test_logs_filter_by_component_and_minimum_level(known_api):
    client, entries = known_api
    got = messages(client.get("/api/v1/logs", params={"component": "c1", "level": "info"}))
    assert got == [e.message for e in entries if e.component == "c1" and e.levelno >= 20]


def test_logs_limit_keeps_the_newest_oldest_first(known_api):
    client, entries = known_api
    assert messages(client.get("/api/v1/logs?limit=3")) == [e.message for e in entries[-3:]]


def test_logs_since_an_id_pages_forward_through_everything_once(known_api):
    client, entries = known_api
    seen, since = [], "0-0"
    while True:
        page = client.get("/api/v1/logs", params={"since": since, "limit": 7}).json()
        if not page:
            break
        seen += [r["message"] for r in page]
        since = page[-1]["id"]
    assert seen == [e.message for e in entries]


def test_logs_since_a_time_returns_later_records(known_api):
    client, entries = known_api
    cut = entries[29].time
    got = messages(client.get("/api/v1/logs", params={"since": str(cut), "limit": 100}))
    assert got == [e.message for e in entries if e.time > cut]


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"level": "verbose"}, "verbose"),
        ({"since": "-5"}, "since='-5'"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_log_queries_are_422_naming_the_problem(known_api, params, fragment):
    client, _ = known_api
    response = client.get("/api/v1/logs", params=params)
    assert response.status_code == 422
    assert fragment in json.dumps(response.json())


def test_log_stream_rejects_a_bad_level_before_streaming(known_api):
    client, _ = known_api
    response = client.get("/api/v1/log_stream", params={"level": "loud"})
    assert response.status_code == 422 and "loud" in response.json()["detail"]


# -- the live event stream -----------------------------------------------------------------------


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    """Server-sent events as dicts of their fields; comments as ``{"comment": text}``."""
    event: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line:
            name, _, value = line.partition(":")
            event[name] = value.lstrip(" ")
        elif event:
            yield event
            event = {}


async def next_data(events: AsyncIterator[dict[str, str]], timeout: float = 30) -> dict:
    async def first() -> dict:
        async for event in events:
            if "data" in event:
                return {"id": event["id"], **json.loads(event["data"])}
        raise AssertionError("event stream ended")

    return await asyncio.wait_for(first(), timeout)


NOISY = ("tests.payloads.noisy:NoisyWorker", "tests.payloads.noisy:ListReducer")


def test_log_stream_delivers_a_record_logged_after_connecting(redis_url):
    log = logging.getLogger("tests.sse")

    async def scenario() -> dict:
        async with Pipeline(redis_url, *NOISY, ["xrd"], prefix="sse") as pipe:
            log.warning("before connecting")
            # the record must be in Redis before connecting, or it would count as new
            await wait_for(lambda: _logged(pipe, "before connecting"), 20)
            async with pipe.client.stream("GET", "/api/v1/log_stream?level=WARNING") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                events = sse_events(response)
                assert (await anext(events)) == {"comment": "connected"}
                log.warning("after connecting")
                return await next_data(events)

    record = asyncio.run(scenario())
    assert record["message"] == "after connecting"
    assert record["level"] == "WARNING" and record["logger"] == "tests.sse"


async def _logged(pipe: Pipeline, message: str) -> bool:
    records = (await pipe.client.get("/api/v1/logs?limit=1000")).json()
    return any(r["message"] == message for r in records)


@pytest.mark.expect_errors
def test_log_stream_filters_by_component_and_level(redis_url):
    async def scenario() -> list[dict]:
        async with Pipeline(redis_url, *NOISY, ["xrd"], prefix="sse") as pipe:
            query = "/api/v1/log_stream?component=worker1&level=WARNING"
            async with pipe.client.stream("GET", query) as response:
                events = sse_events(response)
                assert (await anext(events)) == {"comment": "connected"}
                await pipe.start_scan(request_json(TriggerMap.simple(["xrd"], 9)))
                await push_capture(pipe.upstream_ports["xrd"], XRD_CAPTURE)
                # worker1 gets at least the reserved first event, broadcast to every worker
                return [await next_data(events)]

    records = asyncio.run(scenario())
    assert [(r["component"], r["level"], r["logger"]) for r in records] == [
        ("worker1", "WARNING", "tests.payloads.noisy")
    ]


# -- Redis going away ----------------------------------------------------------------------------


class Idle(Component):
    """A component that only keeps its heartbeat (and its log handler) running."""

    async def main(self) -> None:
        while not await self.sleep_or_stop(0.05):
            pass


def test_log_handler_survives_redis_going_away():
    server = PrivateRedis().start()
    log = logging.getLogger("tests.outage")
    outcome: dict[str, Any] = {}

    async def scenario() -> None:
        store = Store(server.url, prefix="outage")
        component = Idle(store, ComponentInfo(kind=ComponentKind.worker, name="idle-1"))
        component.log_shipper.capacity = 200
        task = asyncio.create_task(component.serve())
        try:

            async def shipped(message: str) -> bool:
                try:
                    return any(e.message == message for _, e in await store.logs_before(None, 50))
                except Exception:
                    return False

            async def registered() -> bool:
                return any(c.name == "idle-1" for c in await store.components())

            await wait_for(registered, 20)  # its log handler is installed by then
            log.warning("before the outage")
            await wait_for(lambda: shipped("before the outage"), 20)
            server.stop()
            started = time.monotonic()
            for i in range(1000):
                log.warning("during the outage %d", i)
            outcome["logging_seconds"] = time.monotonic() - started
            await asyncio.sleep(1.5)  # heartbeats and flushes fail meanwhile
            outcome["alive_during_outage"] = not task.done()
            outcome["dropped"] = component.log_shipper.dropped
            server.start()  # the same port again, empty
            await wait_for(lambda: shipped("during the outage 999"), 30)
            outcome["alive_after_outage"] = not task.done()
        finally:
            component.stop()
            await asyncio.wait_for(task, 20)
            await store.close()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
    assert outcome["logging_seconds"] < 5  # emit never waits for Redis
    assert outcome["alive_during_outage"] and outcome["alive_after_outage"]
    assert outcome["dropped"] >= 1000 - 200  # kept the newest 200, counted the rest


def test_controller_healthz_is_503_without_redis_or_without_the_lock():
    server = PrivateRedis().start()
    bodies: list[tuple[int, dict]] = []

    async def scenario() -> None:
        controller = Controller(Store(server.url, prefix="health"))
        port = free_port()
        uvi = uvicorn.Server(
            uvicorn.Config(
                create_app(controller, lifespan=lambda app: controller.running()),
                host="127.0.0.1",
                port=port,
                log_level="critical",
            )
        )
        serving = asyncio.create_task(uvi.serve())
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            async def answers() -> bool:
                try:
                    return (await client.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(answers, 20)
            for step in (lambda: None, server.stop, server.start):
                step()
                response = await client.get("/healthz")
                bodies.append((response.status_code, response.json()))

            async def reconnected() -> bool:  # a pooled connection may fail once after a restart
                response = await client.get("/healthz")
                bodies[-1] = (response.status_code, response.json())
                return "Redis does not answer" not in response.text

            await wait_for(reconnected, 10)
        uvi.should_exit = True
        await asyncio.wait_for(serving, 20)
        await controller.store.close()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
    (ok_status, ok_body), (down_status, down_body), (back_status, back_body) = bodies
    assert ok_status == 200 and ok_body["status"] == "ok" and ok_body["component"] == "controller"
    assert down_status == 503 and down_body["status"] == "unavailable"
    assert down_body["component"] == "controller" and "Redis" in down_body["detail"]
    # the restarted Redis is empty: the controller lock is gone, so this controller is not ready
    assert back_status == 503 and "held by nobody" in back_body["detail"]

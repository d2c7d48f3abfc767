"""Ingesters on every transport inside a real pipeline (tests/pipeline.py): a scan completes,
the upstream goes away and comes back, the next scan completes too, and what the ingester
counted (connections, messages lost on a SUB upstream) shows in ``GET /api/v1/config``."""

from __future__ import annotations

import asyncio
import json

import httpx
import zmq
import zmq.asyncio

from dranspose.core.event import StreamData
from dranspose.tools.source import StinsSource
from tests.payloads.recorder import StreamParsers, read_records
from tests.pipeline import Pipeline, free_port
from tests.support.panda import HEADER, PandaDataPort
from tests.support.scenarios import check_complete
from tests.support.scenarios import run as run_scenario
from tests.support.triggermaps import simple

WORKER = "tests.payloads.recorder:ProtocolRecordingWorker"
REDUCER = "tests.payloads.recorder:RecordingReducer"
TIMEOUT = 60.0


def run(scenario, timeout: float = TIMEOUT):
    return run_scenario(scenario, timeout)


def received(path: str, stream: str, instance: str | None = None) -> dict[int, dict]:
    """Event number -> what the worker recorded for ``stream`` (every copy must agree)."""
    events: dict[int, dict] = {}
    for record in read_records(path):
        if record["kind"] != "result" or (instance and record["instance"] != instance):
            continue
        seen = record["payload"]["streams"][stream]
        assert events.setdefault(record["event"], seen) == seen
    return events


def reducers(path: str) -> list[str]:
    return [r["instance"] for r in read_records(path) if r["kind"] == "reducer_init"]


def expected(typ: str, messages: list[list[bytes]]) -> dict[int, dict]:
    """What the parser yields applied directly to the messages, numbered from the start."""
    parsers = StreamParsers()
    return {n: parsers.describe(StreamData(typ=typ, frames=m)) for n, m in enumerate(messages)}


async def ingester_upstream(pipe: Pipeline, forwarded: int) -> dict:
    """The ingester's upstream state from the controller, once a heartbeat has carried the
    counts of ``forwarded`` messages."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        config = (await pipe.client.get("/api/v1/config")).json()["components"]
        (entry,) = [c for c in config if c["kind"] == "ingester"]
        upstream = entry["upstream"]
        if upstream["forwarded"] >= forwarded:
            return upstream
        assert asyncio.get_running_loop().time() < deadline, upstream
        await asyncio.sleep(0.1)


def positioncap_session(round_: int, samples: int) -> list[bytes]:
    lines = [b" %g %d\n" % (0.5 * i + round_, i) for i in range(samples)]
    return [HEADER, *lines, b"END %d Ok\n" % samples]


def test_tcp_ingester_survives_the_panda_going_away_between_scans(redis_url, records):
    port = free_port()
    samples = 4
    options = {"pc": {"protocol": "positioncap", "upstream": f"tcp://127.0.0.1:{port}"}}

    async def scenario():
        async with Pipeline(
            redis_url, WORKER, REDUCER, ["pc"], ingester_options=options, prefix="tcp"
        ) as pipe:
            progresses = []
            for round_ in range(2):
                panda = PandaDataPort(port)
                await panda.start()
                writer = await asyncio.wait_for(panda.connections.get(), 20)
                await pipe.start_scan(simple(["pc"], samples))
                writer.write(b"".join(positioncap_session(round_, samples)))
                await writer.drain()
                progresses.append(await pipe.wait_finished(20))
                writer.close()
                await panda.stop()  # the PandA goes away; the ingester keeps trying
            return progresses, await ingester_upstream(pipe, 2 * (samples + 2))

    progresses, upstream = run(scenario)
    for progress in progresses:
        check_complete(progress, samples + 2)
    for round_, instance in enumerate(reducers(records)):
        assert received(records, "pc", instance) == expected(
            "PCAP_RAW", [[m] for m in positioncap_session(round_, samples)]
        )
    assert upstream["transport"] == "tcp" and upstream["connects"] == 2
    assert upstream["disconnects"] >= 1
    assert upstream["forwarded"] == 2 * (samples + 2) and upstream["dropped"] == 0


SARDANA_POSTS = [
    (
        "data_desc",
        {
            "serialno": 12,
            "title": "ascan x 0 1 2 0.1",
            "scandir": "/data",
            "scanfile": "scan.h5",
            "ref_moveables": ["x"],
            "column_desc": [{"name": "point_nb"}, {"name": "x"}, {"name": "ct"}],
        },
    ),
    ("record_data", {"point_nb": 0, "x": 0.0, "ct": 0.1}),
    ("custom_data", {"note": "not a record"}),
    ("record_data", {"point_nb": 1, "x": 0.5, "ct": float("nan")}),
    ("record_data", {"point_nb": 2, "x": 1.0, "ct": 0.3}),
    ("record_end", {"endtime": "Tue Mar  5 10:12:05 2024"}),
]


def test_http_ingester_takes_sardana_posts_for_each_scan(redis_url, records):
    port = free_port()
    options = {"sd": {"protocol": "sardana", "upstream": f"http://127.0.0.1:{port}"}}

    async def scenario():
        async with Pipeline(
            redis_url, WORKER, REDUCER, ["sd"], ingester_options=options, prefix="http"
        ) as pipe:
            progresses = []
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
                for _ in range(2):
                    await pipe.start_scan(simple(["sd"], 3))
                    for endpoint, body in SARDANA_POSTS:
                        answer = await c.post(f"/v1/{endpoint}", content=json.dumps(body))
                        assert answer.status_code == 200, answer.text
                    progresses.append(await pipe.wait_finished(20))
            return progresses, await ingester_upstream(pipe, 10)

    progresses, upstream = run(scenario)
    for progress in progresses:
        check_complete(progress, 5)
    frames = [
        [
            json.dumps(
                {
                    "type": {
                        "data_desc": "DataDescription",
                        "record_data": "RecordData",
                        "record_end": "RecordEnd",
                    }[e],
                    **b,
                }
            ).encode()
        ]
        for e, b in SARDANA_POSTS
        if e != "custom_data"
    ]
    for instance in reducers(records):
        assert received(records, "sd", instance) == expected("sardana", frames)
    assert upstream["transport"] == "http" and upstream["url"] == f"http://127.0.0.1:{port}"
    assert upstream["received"] == upstream["forwarded"] == 10


def albaem(message_id: int, kind: str) -> list[bytes]:
    body = {"message_id": message_id, "message_type": kind, "version": 1}
    if kind == "data":
        body.update(
            frame_number=message_id - 2, timestamp=0.1 * message_id, channel1=[1.0 * message_id]
        )
    return [json.dumps(body).encode()]


def test_sub_ingester_reports_messages_missing_upstream_in_config(redis_url, records, caplog):
    """albaem numbers every message: one that never arrives is counted and shown."""

    async def scenario():
        ctx = zmq.asyncio.Context()
        pub = ctx.socket(zmq.XPUB)
        pub.linger = 0
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        options = {"al": {"protocol": "albaem", "upstream": f"tcp://127.0.0.1:{port}"}}
        try:
            async with Pipeline(
                redis_url, WORKER, REDUCER, ["al"], ingester_options=options, prefix="sub"
            ) as pipe:
                await asyncio.wait_for(pub.recv(), 10)  # the ingester subscribed
                await pipe.start_scan(simple(["al"], 3))
                sent = [
                    albaem(1, "series-start"),
                    albaem(2, "data"),
                    albaem(4, "data"),
                    albaem(5, "data"),
                    albaem(6, "series-end"),
                ]  # message 3 is lost
                for message in sent:
                    await pub.send_multipart(message)
                progress = await pipe.wait_finished(20)
                return sent, progress, await ingester_upstream(pipe, 5)
        finally:
            pub.close()
            ctx.term()

    sent, progress, upstream = run(scenario)
    check_complete(progress, 5)
    assert received(records, "al") == expected("albaem", sent)
    assert upstream["transport"] == "sub"
    assert (upstream["missing"], upstream["gaps"], upstream["dropped"], upstream["overflow"]) == (
        1,
        1,
        1,
        0,
    )
    assert "stream al: 1 message missing before message number 4" in caplog.text


def test_pull_ingester_reconnects_to_a_restarted_detector(redis_url, records, caplog):
    async def scenario():
        async with Pipeline(redis_url, WORKER, REDUCER, ["det"], prefix="pull") as pipe:
            url = f"tcp://127.0.0.1:{pipe.upstream_ports['det']}"
            progresses = []
            for seed in range(2):
                await pipe.start_scan(simple(["det"], 5))
                with StinsSource(url, frames=5, seed=seed) as source:
                    progresses.append(await pipe.wait_finished(20))
                    assert source.wait_done(10)
                # the detector is gone until the next round binds again
            return progresses, await ingester_upstream(pipe, 14)

    with caplog.at_level("INFO", logger="dranspose.io.transports"):
        progresses, upstream = run(scenario)
    for progress in progresses:
        check_complete(progress, 7)
    assert upstream["transport"] == "pull"
    assert upstream["connects"] == 2 and upstream["disconnects"] >= 1
    assert "stream det: connected again to PULL upstream" in caplog.text

"""Ingester transports on real sockets: ZMQ PULL and SUB, the TCP client, the HTTP server.

Each test drives one :class:`~dranspose.io.transports.base.Upstream` directly, with the other end
played by plain pyzmq, asyncio streams or an HTTP client written here, and checks what the
ingester would get (messages, kinds, order) and what it reports (counters, log lines).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import httpx
import pytest
import zmq
import zmq.asyncio

from dranspose.io.transports import open_upstream
from dranspose.io.transports.address import host_port
from dranspose.io.transports.http_upstream import HttpUpstream
from dranspose.io.transports.tcp_upstream import TcpUpstream
from dranspose.protocols.positioncap.parser import CAPTURE_REQUEST
from dranspose.protocols.registry import Kind, get_protocol
from tests.ports import free_port
from tests.support.panda import END, HEADER, LINES, SESSION, PandaDataPort

TIMEOUT = 20.0


def run(scenario, timeout: float = TIMEOUT):
    return asyncio.run(asyncio.wait_for(scenario(), timeout))


async def until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.01)


async def take(upstream, count: int, timeout: float = 10.0) -> list:
    """``count`` messages from ``upstream``, as the ingester takes them."""
    taken = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(taken) < count:
        item = upstream.pop()
        if item is None:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"only {len(taken)} of {count} messages within {timeout} s")
            await upstream.wait(0.1)
            continue
        taken.append(item)
    return taken


def body(frames: list) -> dict:
    raw = frames[0]
    return json.loads(raw if isinstance(raw, bytes) else raw.bytes)


def pcap_message(message_id: int, kind: str = "data") -> list[bytes]:
    body = {"message_id": message_id, "message_type": kind, "version": 1}
    if kind == "data":
        body.update(frame_number=message_id, value=[float(message_id)])
    return [json.dumps(body).encode()]


def pcap_series(ids: list[int]) -> list[list[bytes]]:
    kinds = ["series-start"] + ["data"] * (len(ids) - 2) + ["series-end"]
    return [pcap_message(i, k) for i, k in zip(ids, kinds)]


# --- ZMQ SUB -------------------------------------------------------------------------------------


async def subscribed_publisher(ctx: zmq.asyncio.Context):
    """An XPUB socket (a PUB that sees subscriptions) and its address."""
    pub = ctx.socket(zmq.XPUB)
    pub.linger = 0
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    return pub, f"tcp://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def pcap_sub_upstream(**options):
    """A started pcap SUB upstream subscribed to a fresh publisher: yields (publisher, upstream)."""
    ctx = zmq.asyncio.Context()
    pub, url = await subscribed_publisher(ctx)
    upstream = open_upstream(get_protocol("pcap"), url, name="pc", ctx=ctx, **options)
    try:
        await upstream.start()
        await asyncio.wait_for(pub.recv(), 10)  # the subscription
        yield pub, upstream
    finally:
        await upstream.close()
        pub.close()
        ctx.term()


def test_sub_counts_messages_missing_from_the_protocol_counter(caplog):
    ids = [1, 2, 3, 5, 6, 9, 10]  # 4, 7 and 8 never arrive

    async def scenario():
        async with pcap_sub_upstream() as (pub, upstream):
            for message in pcap_series(ids):
                await pub.send_multipart(message)
            taken = await take(upstream, len(ids))
            return upstream.state.model_copy(), taken

    with caplog.at_level(logging.WARNING, logger="dranspose.io.transports"):
        state, taken = run(scenario)
    assert [body(frames)["message_id"] for _, frames in taken] == ids
    assert [kind for kind, _ in taken] == [Kind.START] + [Kind.EVENT] * 5 + [Kind.END]
    assert (state.received, state.missing, state.gaps, state.dropped, state.overflow) == (
        7,
        3,
        2,
        3,
        0,
    )
    text = caplog.text
    assert "stream pc: 1 message missing before message number 5 (by the protocol's" in text
    # the second gap came within a second of the first: reported at the series end
    assert "2 messages missing since the last report, up to the series end" in text
    assert "3 missing in all" in text


def test_sub_series_start_resets_the_counter():
    """A new series numbers from its start again: no loss is counted across series."""
    ids = [1, 2, 3, 1, 2, 3]

    async def scenario():
        async with pcap_sub_upstream() as (pub, upstream):
            for message in pcap_series(ids[:3]) + pcap_series(ids[3:]):
                await pub.send_multipart(message)
            await take(upstream, 6)
            return upstream.state.model_copy()

    state = run(scenario)
    assert (state.received, state.missing, state.dropped) == (6, 0, 0)


def test_sub_drops_and_counts_what_arrives_while_the_backlog_is_full(caplog):
    async def scenario():
        async with pcap_sub_upstream(backlog=5) as (pub, upstream):
            for i in range(1, 13):
                await pub.send_multipart(pcap_message(i))
            await until(lambda: upstream.state.received == 12, what="12 messages read")
            first = await take(upstream, 5)
            assert upstream.pop() is None
            for i in range(13, 15):  # room again: accepted
                await pub.send_multipart(pcap_message(i))
            second = await take(upstream, 2)
            return upstream.state.model_copy(), first + second

    with caplog.at_level(logging.WARNING, logger="dranspose.io.transports"):
        state, taken = run(scenario)
    assert [body(f)["message_id"] for _, f in taken] == [1, 2, 3, 4, 5, 13, 14]
    # the dropped messages are counted as overflow, not again as missing from the counter
    assert (state.overflow, state.missing, state.dropped) == (7, 0, 7)
    assert "backlog full (5 messages" in caplog.text
    assert "backlog has room again; 7 messages were dropped" in caplog.text


def test_contrast_has_no_counter_so_only_overflow_can_be_counted():
    assert get_protocol("contrast").counter is None
    assert all(
        get_protocol(p).counter is not None
        for p in ("pcap", "albaem", "xspress", "lecroy", "stins", "eiger_legacy")
    )


@pytest.mark.parametrize(
    "protocol, message, number",
    [
        ("stins", [b'{"htype": "image", "frame": 4, "msg_number": 5}', b"pixels"], 5),
        ("xspress", [b'{"htype": "image", "frame": 4}', b"spectra", b"meta"], 4),
        ("xspress", [b'{"htype": "header", "frame": 9}'], None),  # only images are counted
        ("lecroy", [b'{"htype": "traces", "ch": 2, "frame": 3}', b"w", b"t"], 3),
        ("lecroy", [b'{"htype": "msg", "what": 2, "frame": 4}'], None),
        ("eiger_legacy", [b'{"htype": "dimage-1.0", "frame": 7, "series": 6}', b"{}", b"x"], 7),
        ("pcap", [b'{"message_id": 12, "message_type": "data"}'], 12),
        ("albaem", [b'{"message_type": "data", "message_id": "12"}'], None),  # not an integer
        ("albaem", [b"\x80\x04not json"], None),
    ],
)
def test_message_counters_are_read_from_the_json_header(protocol, message, number):
    assert get_protocol(protocol).counter.number(message) == number


# --- ZMQ PULL ------------------------------------------------------------------------------------


def test_pull_reads_only_on_demand_and_never_drops():
    """20,000 messages of 1 kB (far more than the backlog, the high-water marks and the kernel's
    buffers hold) pushed before anything is taken: the PUSH side waits, and every message
    arrives, in order."""
    count = 20_000
    pad = b"x" * 1000

    async def scenario():
        ctx = zmq.asyncio.Context()
        push = ctx.socket(zmq.PUSH)
        push.linger = 0
        port = push.bind_to_random_port("tcp://127.0.0.1")
        upstream = open_upstream(get_protocol("raw"), f"tcp://127.0.0.1:{port}", name="r", ctx=ctx)
        try:
            await upstream.start()

            async def send_all():
                for i in range(count):
                    await push.send_multipart([b"%d" % i, pad])

            sender = asyncio.create_task(send_all())
            await asyncio.sleep(0.5)
            assert not sender.done()  # held back: nothing is read ahead
            assert upstream.state.received == 0
            taken = await take(upstream, count, timeout=60)
            await sender
            return upstream.state.model_copy(), taken
        finally:
            await upstream.close()
            push.close()
            ctx.term()

    state, taken = run(scenario, timeout=90)
    assert [int(f[0].bytes) for _, f in taken] == list(range(count))
    assert (state.received, state.dropped, state.overflow) == (count, 0, 0)


def test_zmq_upstream_logs_an_outage_and_reconnects_by_itself(caplog):
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"

    async def scenario():
        ctx = zmq.asyncio.Context()
        upstream = open_upstream(get_protocol("raw"), url, name="det", ctx=ctx)
        try:
            await upstream.start()
            for round_ in range(2):
                push = ctx.socket(zmq.PUSH)
                push.linger = 0
                push.bind(url)
                await until(lambda: upstream.state.connects == round_ + 1, what="connected")  # noqa: B023
                assert upstream.state.connected
                await push.send_multipart([b"round %d" % round_])
                ((_kind, frames),) = await take(upstream, 1)
                assert frames[0].bytes == b"round %d" % round_
                push.close()
                await until(
                    lambda: upstream.state.disconnects == round_ + 1,  # noqa: B023
                    what="disconnect seen",
                )
                assert not upstream.state.connected
            return upstream.state.model_copy()
        finally:
            await upstream.close()
            ctx.term()

    with caplog.at_level(logging.INFO, logger="dranspose.io.transports"):
        state = run(scenario)
    assert (state.connects, state.disconnects) == (2, 2)
    assert f"stream det: connected to PULL upstream {url}" in caplog.text
    assert f"stream det: connected again to PULL upstream {url}" in caplog.text
    assert "went away; ZMQ reconnects by itself" in caplog.text


# --- TCP -----------------------------------------------------------------------------------------


def test_tcp_upstream_retries_until_the_server_is_up_then_splits_the_stream(caplog):
    port = free_port()

    async def scenario():
        upstream = open_upstream(get_protocol("positioncap"), f"tcp://127.0.0.1:{port}", name="pc")
        panda = PandaDataPort(port)
        try:
            await upstream.start()
            await asyncio.sleep(0.5)  # nothing listens: several attempts fail
            assert not upstream.state.connected
            assert "cannot connect" in upstream.state.last_error
            await panda.start()
            writer = await asyncio.wait_for(panda.connections.get(), 10)
            for start in range(0, len(SESSION), 7):  # odd pieces: messages are cut anywhere
                writer.write(SESSION[start : start + 7])
                await writer.drain()
            taken = await take(upstream, 8)
            return upstream.state.model_copy(), panda.requests, taken
        finally:
            await upstream.close()
            await panda.stop()

    with caplog.at_level(logging.DEBUG, logger="dranspose.io.transports"):
        state, requests, taken = run(scenario)
    assert requests == [CAPTURE_REQUEST]
    assert [frames for _, frames in taken] == [[HEADER], *[[line] for line in LINES], [END]]
    assert [kind for kind, _ in taken] == [Kind.START] + [Kind.EVENT] * 6 + [Kind.END]
    assert state.connected and state.connects == 1 and state.received == 8
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "cannot connect" in r.getMessage()
    ]
    assert len(warnings) == 1  # the first failure; the retries are debug lines
    assert "retrying with back-off up to every 5 s" in warnings[0]
    assert "attempt 2" in caplog.text  # later attempts are debug lines
    assert "connected to TCP upstream" in caplog.text and "failed attempts" in caplog.text


def test_tcp_upstream_reconnects_after_a_lost_connection_and_drops_the_unfinished_line(caplog):
    port = free_port()

    async def scenario():
        upstream = TcpUpstream(
            get_protocol("positioncap"), f"tcp://127.0.0.1:{port}", name="pc", retry_min=0.05
        )
        panda = PandaDataPort(port)
        await panda.start()
        try:
            await upstream.start()
            writer = await asyncio.wait_for(panda.connections.get(), 10)
            writer.write(HEADER + LINES[0] + b" 9.5 1")  # the connection drops mid-line
            await writer.drain()
            first = await take(upstream, 2)
            writer.close()
            await until(lambda: upstream.state.disconnects == 1, what="disconnect")
            writer = await asyncio.wait_for(panda.connections.get(), 10)
            writer.write(SESSION)
            await writer.drain()
            second = await take(upstream, 8)
            return upstream.state.model_copy(), panda.requests, first, second
        finally:
            await upstream.close()
            await panda.stop()

    with caplog.at_level(logging.INFO, logger="dranspose.io.transports"):
        state, requests, first, second = run(scenario)
    assert [f for _, f in first] == [[HEADER], [LINES[0]]]
    assert [f for _, f in second] == [[HEADER], *[[line] for line in LINES], [END]]
    assert requests == [CAPTURE_REQUEST, CAPTURE_REQUEST]
    assert (state.connects, state.disconnects) == (2, 1)
    assert (
        "closed the connection; 6 bytes of an unfinished message discarded; reconnecting"
        in caplog.text
    )
    assert "connected again to TCP upstream" in caplog.text


def test_tcp_upstream_reports_a_refused_request_and_keeps_trying():
    port = free_port()

    async def scenario():
        upstream = TcpUpstream(
            get_protocol("positioncap"),
            f"tcp://127.0.0.1:{port}",
            name="pc",
            retry_min=0.05,
            retry_max=0.1,
        )
        panda = PandaDataPort(port, reply=b"ERR Unknown option 'SCALED'\n")
        await panda.start()
        try:
            await upstream.start()
            await until(lambda: len(panda.requests) >= 3, what="three attempts")
            return upstream.state.model_copy()
        finally:
            await upstream.close()
            await panda.stop()

    state = run(scenario)
    assert not state.connected and state.connects == 0
    assert "refused the capture options: \"ERR Unknown option 'SCALED'\"" in state.last_error


def test_tcp_upstream_stops_reading_while_the_backlog_is_full():
    """TCP flow control instead of loss: with the backlog full nothing more is read."""
    lines = [b" %d %d\n" % (i, i) for i in range(50_000)]

    async def scenario():
        port = free_port()
        upstream = TcpUpstream(
            get_protocol("positioncap"), f"tcp://127.0.0.1:{port}", name="pc", backlog=10
        )
        panda = PandaDataPort(port)
        await panda.start()
        try:
            await upstream.start()
            writer = await asyncio.wait_for(panda.connections.get(), 10)
            writer.write(HEADER + b"".join(lines))
            await until(lambda: upstream.state.received > 0, what="first read")
            await asyncio.sleep(0.3)
            held = len(upstream.backlog)
            taken = await take(upstream, 1 + len(lines), timeout=30)
            writer.close()
            return held, upstream.state.model_copy(), taken
        finally:
            await upstream.close()
            await panda.stop()

    held, state, taken = run(scenario, timeout=60)
    # one read (64 KiB) may overshoot the limit; the rest waits in the kernel, not here
    assert 10 <= held <= 10 + 65536 // len(lines[0]) + 1
    assert [f[0] for _, f in taken[1:]] == lines
    assert state.dropped == 0


def test_tcp_upstream_needs_a_host_and_port():
    with pytest.raises(ValueError, match="expected tcp://host:port with a port number"):
        open_upstream(get_protocol("positioncap"), "tcp://panda", name="pc")
    with pytest.raises(ValueError, match="needs the host to connect to"):
        open_upstream(get_protocol("positioncap"), "tcp://*:8889", name="pc")
    with pytest.raises(ValueError, match="read over TCP, not from a SUB socket"):
        open_upstream(get_protocol("positioncap"), "tcp://panda:8889", name="pc", sub=True)


def test_addresses_accept_wildcards_and_bare_host_port():
    assert host_port("tcp://*:9999", "tcp", "bind") == ("", 9999)
    assert host_port("http://0.0.0.0:5010", "http", "listen") == ("0.0.0.0", 5010)
    assert host_port("panda:8889", "tcp", "upstream") == ("panda", 8889)
    with pytest.raises(ValueError, match="listen 'tcp://x:1': expected http://host:port"):
        host_port("tcp://x:1", "http", "listen")


# --- HTTP ----------------------------------------------------------------------------------------

DESC = {"serialno": 7, "title": "ascan x 0 1 2 0.1", "column_desc": [{"name": "point_nb"}]}


async def http_upstream(**options) -> tuple[HttpUpstream, httpx.AsyncClient]:
    upstream = HttpUpstream(get_protocol("sardana"), "http://127.0.0.1:0", name="sd", **options)
    await upstream.start()
    return upstream, httpx.AsyncClient(base_url=f"http://127.0.0.1:{upstream.port}", timeout=10)


def test_http_posts_become_tagged_frames_in_order():
    async def scenario():
        upstream, client = await http_upstream()
        try:
            answers = [await client.post("/v1/data_desc", content=json.dumps(DESC))]
            for i in range(3):
                answers.append(
                    await client.post("/v1/record_data", content=b'{"point_nb": %d, "x": NaN}' % i)
                )
            answers.append(await client.post("/v1/custom_data", content=b'{"note": "hi"}'))
            answers.append(await client.post("/v1/record_end", content=b"{}"))
            assert upstream.state.connected  # listening
            taken = await take(upstream, 5)
            return upstream.state.model_copy(), answers, taken
        finally:
            await client.aclose()
            await upstream.close()

    state, answers, taken = run(scenario)
    assert [a.status_code for a in answers] == [200] * 6
    assert answers[4].json() == {
        "accepted": False,
        "detail": "custom_data is not part of the stream; ignored",
    }
    frames = [f[0] for _, f in taken]
    assert frames[0] == json.dumps({"type": "DataDescription", **DESC}).encode()
    assert frames[1] == b'{"type": "RecordData", "point_nb": 0, "x": NaN}'
    assert frames[4] == b'{"type": "RecordEnd"}'
    assert [k for k, _ in taken] == [Kind.START, Kind.EVENT, Kind.EVENT, Kind.EVENT, Kind.END]
    assert state.received == 5


def test_http_bad_posts_get_4xx_saying_what_was_expected():
    async def scenario():
        upstream, client = await http_upstream()
        try:
            return [
                await client.post("/v1/record_date", content=b"{}"),
                await client.post("/v1/record_data", content=b"[1, 2]"),
                await client.post("/v1/record_data", content=b"{oops"),
                await client.post("/v1/record_data", content=b'{"type": "RecordEnd"}'),
                await client.get("/v1/record_data"),
                await client.get("/"),
            ], upstream.state
        finally:
            await client.aclose()
            await upstream.close()

    (unknown, array, broken, contradiction, get, describe), state = run(scenario)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == (
        "no endpoint /v1/record_date; this sardana ingester takes POST to /v1/data_desc, "
        "/v1/record_data, /v1/record_end, /v1/custom_data"
    )
    assert array.status_code == 400
    assert array.json()["detail"] == (
        "POST /v1/record_data: body is a JSON array, expected a JSON object"
    )
    assert broken.status_code == 400 and "body is not valid JSON" in broken.json()["detail"]
    assert contradiction.status_code == 400
    assert contradiction.json()["detail"] == (
        "POST /v1/record_data: body says type 'RecordEnd', but this endpoint takes 'RecordData'"
    )
    assert get.status_code == 405
    assert describe.json()["endpoints"][0] == "/v1/data_desc"
    assert state.received == 0


def test_http_holds_a_post_while_the_backlog_is_full_then_refuses_with_503():
    async def scenario():
        upstream, client = await http_upstream(backlog=1, room_timeout=0.5)
        try:
            first = await client.post("/v1/record_data", content=b'{"point_nb": 0}')
            refused = await client.post("/v1/record_data", content=b'{"point_nb": 1}')
            upstream.room_timeout = 10
            waiting = asyncio.create_task(
                client.post("/v1/record_data", content=b'{"point_nb": 2}')
            )
            await asyncio.sleep(0.3)
            assert not waiting.done()  # held back, not refused
            taken = await take(upstream, 1)
            accepted = await waiting
            taken += await take(upstream, 1)
            return first, refused, accepted, taken
        finally:
            await client.aclose()
            await upstream.close()

    first, refused, accepted, taken = run(scenario)
    assert (first.status_code, refused.status_code, accepted.status_code) == (200, 503, 200)
    assert refused.json()["detail"] == (
        "backlog of 1 messages full for 0.5 s: no scan is reading stream sd"
    )
    assert [json.loads(f[0])["point_nb"] for _, f in taken] == [0, 2]


def test_http_listen_address_in_use_is_a_clear_error():
    async def scenario():
        upstream, client = await http_upstream()
        try:
            with pytest.raises(
                OSError,
                match=f"cannot listen on http://127.0.0.1:{upstream.port}: Address already in use",
            ):
                HttpUpstream(
                    get_protocol("sardana"), f"http://127.0.0.1:{upstream.port}", name="again"
                )
        finally:
            await client.aclose()
            await upstream.close()

    run(scenario)


def test_sequence_watch_counts_skipped_numbers_but_not_a_counter_going_back():
    from dranspose.protocols.registry import CounterWatch

    watch = CounterWatch(get_protocol("pcap").counter)
    seen = [watch.see(Kind.START, pcap_message(1, "series-start"))]
    seen += [watch.see(Kind.EVENT, pcap_message(i)) for i in (2, 5, 6, 3, 4, 4, 9)]
    # 5 after 2: two missing; 3 after 6: the upstream restarted, nothing lost; 4 after 4: a
    # repeat; 9 after 4: four missing
    assert seen == [0, 0, 2, 0, 0, 0, 0, 4]


def test_sequence_watch_knows_the_first_number_of_a_series():
    from dranspose.protocols.registry import CounterWatch

    watch = CounterWatch(get_protocol("xspress").counter)
    assert watch.see(Kind.START, [b'{"htype": "header"}']) == 0
    # images count from 0: the first two images of the series never arrived
    assert watch.see(Kind.EVENT, [b'{"htype": "image", "frame": 2}', b"s", b"m"]) == 2


# --- command line --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--protocol", "positioncap", "--sub", "--upstream", "tcp://panda:8889"],
            "--sub: protocol 'positioncap' is read over TCP, not ZMQ",
        ),
        (
            ["--protocol", "sardana", "--upstream", "tcp://0.0.0.0:5010"],
            "error: listen address 'tcp://0.0.0.0:5010': expected http://host:port",
        ),
        (
            ["--protocol", "positioncap", "--upstream", "tcp://panda"],
            "error: upstream 'tcp://panda': expected tcp://host:port with a port number",
        ),
        (
            ["--protocol", "stins", "--upstream", "tcp://det:9999", "--backlog", "0"],
            "--backlog must be at least 1",
        ),
    ],
)
def test_ingester_command_refuses_a_transport_it_cannot_use(args, message):
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dranspose",
            "ingester",
            "--redis-url",
            "redis://127.0.0.1:9/0",
            "--stream",
            "s",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr

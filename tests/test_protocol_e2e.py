"""Every protocol end to end, as processes: ``dranspose source`` plays a raw capture over the
protocol's transport, a real ``dranspose ingester --protocol P`` forwards it, two workers run
``ProtocolRecordingWorker`` and the reducer records what arrives. What each event carries
(frame hashes and the fingerprint of what the protocol's parser yields) must equal what the
parser yields applied directly to the capture file, with events numbered by rules written out
here (not dranspose's). In the same round a second source plays the file to ``dranspose
capture``; the capture must hold exactly what was sent, and ``dranspose convert`` then
``dranspose replay`` of it must give the live run's results, and the converted dump must equal
what the live ingester wrote with ``--dump``.

Position capture (TCP) and Sardana (HTTP) have no real capture: a small acquisition and a
small scan are written out here.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import cbor2
import httpx
import pytest

from dranspose.core.event import StreamData
from dranspose.core.triggermap import TriggerMap
from dranspose.io.capture import RawCaptureWriter, read_capture
from dranspose.io.local_redis import PrivateRedis
from tests.payloads.recorder import RECORD_ENV, StreamParsers, read_records
from tests.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
WORKER = "tests.payloads.recorder:ProtocolRecordingWorker"
REDUCER = "tests.payloads.recorder:RecordingReducer"
TIMEOUT = 90.0

# --- reading the captures without dranspose --------------------------------------------------


def cbor_items(path: Path) -> list[list[bytes]]:
    """Each item's frames: a raw capture's list, or an ingester dump's only stream."""
    blob = path.read_bytes()
    if path.suffix == ".gz":
        blob = gzip.decompress(blob)
    stream = io.BytesIO(blob)
    items = []
    while stream.tell() < len(blob):
        item = cbor2.load(stream)
        if isinstance(item, cbor2.CBORTag):  # ingester dump: [event, {stream: tag[typ, frames]}]
            (tagged,) = item.value[1].values()
            item = tagged.value[1]
        items.append([bytes(f) for f in item])
    return items


def json_head(frames: list[bytes]) -> dict:
    try:
        head = json.loads(frames[0])
    except ValueError:
        return {}
    return head if isinstance(head, dict) else {}


def by_key(key: str, start: str, end: str) -> Callable[[list[bytes]], str]:
    def kind(frames: list[bytes]) -> str:
        value = json_head(frames).get(key)
        return "start" if value == start else "end" if value == end else "event"

    return kind


def contrast_kind(frames: list[bytes]) -> str:
    status = pickle.loads(frames[0]).get("status")  # the repository's own test data
    return {"started": "start", "finished": "end", "heartbeat": "skip"}.get(status, "event")


def lecroy_kind(frames: list[bytes]) -> str:
    head = json_head(frames)
    if head.get("htype") != "msg":
        return "event"
    return {0: "start", 3: "end"}.get(head.get("what"), "event")


def positioncap_kind(frames: list[bytes]) -> str:
    text = frames[0]
    return (
        "start" if text.startswith(b"arm_time:") else "end" if text.startswith(b"END") else "event"
    )


def xspress_messages(items: list[list[bytes]]) -> list[list[bytes]]:
    """Single-frame Xspress3 streams send an image as header, spectra, meta: three items."""
    messages, pending = [], None
    for frames in items:
        if pending is not None:
            pending.extend(frames)
            if len(pending) == 3:
                messages.append(pending)
                pending = None
        elif len(frames) == 1 and json_head(frames).get("htype") == "image":
            pending = list(frames)
        else:
            messages.append(frames)
    return messages


def first_series(messages: list[list[bytes]], kind: Callable[[list[bytes]], str]):
    series: list[list[bytes]] = []
    for frames in messages:
        what = kind(frames)
        if what == "skip" or (not series and what != "start"):
            continue
        series.append(frames)
        if what == "end":
            return series
    raise AssertionError("the capture holds no complete series")


# --- generated streams for the protocols without a capture -----------------------------------


def positioncap_messages() -> list[bytes]:
    header = (
        b"arm_time: 2024-03-05T10:12:03.257841574Z\nstart_time: 2024-03-05T10:12:03.2588Z\n"
        b"missed: 0\nprocess: Scaled\nformat: ASCII\nfields:\n"
        b" PCAP.TS_TRIG double Value scale: 8e-09 offset: 0 units: s\n"
        b" INENC1.VAL double Mean scale: 0.0005 offset: -12.5 units: mm\n"
        b" COUNTER1.OUT uint32 Value\n\n"
    )
    lines = [b" %.9f %.5f %d\n" % (0.01 * i + 1e-6, -3.75 + 0.5 * i, i) for i in range(12)]
    return [header, *lines, b"END 12 Ok\n"]


def write_positioncap(path: Path) -> list[list[bytes]]:
    """The TCP byte stream cut into items of 37 bytes (not at message borders); returns the
    messages the stream holds."""
    stream = b"".join(positioncap_messages())
    with RawCaptureWriter(path) as out:
        for start in range(0, len(stream), 37):
            out.write([stream[start : start + 37]])
    return [[m] for m in positioncap_messages()]


def sardana_frames() -> list[bytes]:
    desc = {
        "serialno": 1734,
        "title": "ascan sam_x 0.0 1.0 4 0.1",
        "scandir": "/data/p123",
        "scanfile": ["scan_1734.h5"],
        "ref_moveables": ["sam_x"],
        "counters": ["ct01"],
        "column_desc": [
            {"name": "point_nb", "label": "#Pt No", "dtype": "int64"},
            {"name": "sam_x", "label": "sam_x", "is_reference": True},
            {"name": "ct01", "label": "ct01"},
        ],
    }
    frames = [json.dumps({"type": "DataDescription", **desc}).encode()]
    for point in range(5):
        record = {
            "point_nb": point,
            "sam_x": 0.25 * point,
            "ct01": float("nan") if point == 2 else 0.1 + point,
            "timestamp": 0.4 + point,
        }
        frames.append(json.dumps({"type": "RecordData", **record}).encode())
    frames.append(
        json.dumps(
            {"type": "RecordEnd", "endtime": "Tue Mar  5 10:12:05 2024", "deadtime": 0.271}
        ).encode()
    )
    return frames


def write_sardana(path: Path) -> list[list[bytes]]:
    with RawCaptureWriter(path) as out:
        for frame in sardana_frames():
            out.write([frame])
    return [[f] for f in sardana_frames()]


# --- the cases ---------------------------------------------------------------------------------


@dataclass
class Case:
    protocol: str
    typ: str  # the stream type the ingester labels frames with (written out, not looked up)
    transport: str  # pull, sub, tcp, http
    capture: Optional[str]  # file in tests/data (or data/), None: generated
    kind: Callable[[list[bytes]], str]
    regroup: Callable[[list[list[bytes]]], list[list[bytes]]] = lambda items: items

    @property
    def id(self) -> str:
        return f"{self.protocol}-{self.capture or 'generated'}"


CASES = [
    Case("stins", "STINS", "pull", "dump_xrd.cbors", by_key("htype", "header", "series_end")),
    Case("contrast", "contrast", "sub", "contrast-dump.cbors", contrast_kind),
    Case(
        "xspress",
        "xspress",
        "sub",
        "xspress3-dump.cbors",
        by_key("htype", "header", "series_end"),
        xspress_messages,
    ),
    Case(
        "xspress",
        "xspress",
        "sub",
        "xspress3-multipart.cbors",
        by_key("htype", "header", "series_end"),
        xspress_messages,
    ),
    Case(
        "xspress",
        "xspress",
        "sub",
        "xspress3mini-dump20.cbors",
        by_key("htype", "header", "series_end"),
        xspress_messages,
    ),
    Case(
        "pcap",
        "PCAP",
        "sub",
        "pcap-zmq.cbors",
        by_key("message_type", "series-start", "series-end"),
    ),
    Case(
        "albaem",
        "albaem",
        "sub",
        "albaem-dump.cbors",
        by_key("message_type", "series-start", "series-end"),
    ),
    Case(
        "eiger_legacy",
        "EIGER_LEGACY",
        "pull",
        "eiger-small.cbors",
        by_key("htype", "dheader-1.0", "dseries_end-1.0"),
    ),
    # the original's stream type (dranspose.data.lecroy.LECROY_TYPE), written out
    Case("lecroy", "lecroy_9fwdWp6Rq7", "sub", "maui-02-continuous-3.cbor.gz", lecroy_kind),
    Case("lecroy", "lecroy_9fwdWp6Rq7", "sub", "maui-02-sequential-3.cbor.gz", lecroy_kind),
    Case("positioncap", "PCAP_RAW", "tcp", None, positioncap_kind),
    Case("sardana", "sardana", "http", None, by_key("type", "DataDescription", "RecordEnd")),
]


def capture_path(case: Case) -> Path:
    for folder in (DATA, ROOT / "data"):
        if (folder / case.capture).exists():
            return folder / case.capture
    pytest.skip(f"{case.capture} is not in tests/data")


def prepare(case: Case, folder: Path) -> tuple[Path, list[list[bytes]], list[list[bytes]]]:
    """The file to play, what a raw capture of it must hold, and the series' messages."""
    if case.protocol == "positioncap":
        path = folder / "positioncap.cbors"
        sent = write_positioncap(path)
    elif case.protocol == "sardana":
        path = folder / "sardana.cbors"
        sent = write_sardana(path)
    else:
        path = capture_path(case)
        sent = cbor_items(path)
    return path, sent, first_series(case.regroup(sent), case.kind)


def expected_events(case: Case, series: list[list[bytes]]) -> dict[int, dict]:
    parsers = StreamParsers()
    return {
        n: parsers.describe(StreamData(typ=case.typ, frames=frames))
        for n, frames in enumerate(series)
    }


# --- processes -----------------------------------------------------------------------------------


class Processes:
    """``dranspose`` commands as processes, output in log files (read when a test fails)."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = self.folder / f"{name}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dranspose", *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append((proc, log))
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name} (exit {proc.poll()})\n{log.read_text()[-3000:]}"
            for proc, log in self.procs
        )

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop_all(self) -> None:
        for proc, _ in self.procs:
            self.stop(proc)


def wait_until(predicate, timeout: float, what: str, procs: Processes):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.TransportError:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout} s\n{procs.logs()}")


@dataclass
class Runtime:
    api: httpx.Client
    records: Path
    env: dict[str, str]
    folder: Path


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """Redis, the controller, two recording workers and the reducer, shared by every case."""
    folder = tmp_path_factory.mktemp("runtime")
    records = folder / "records.jsonl"
    with PrivateRedis() as redis:
        env = {
            **os.environ,
            "REDIS_URL": redis.url,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
            RECORD_ENV: str(records),
        }
        procs = Processes(folder, env)
        port = free_port()
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        try:
            procs.start("controller", "controller", "--host", "127.0.0.1", "--port", str(port))
            for i in range(2):
                procs.start(f"worker{i}", "worker", "--class", WORKER, "--name", f"w{i}")
            procs.start("reducer", "reducer", "--class", REDUCER, "--port", str(free_port()))
            wait_until(
                lambda: len(api.get("/api/v1/config").json()["components"]) >= 4,
                60,
                "registration",
                procs,
            )
            yield Runtime(api, records, env, folder)
        finally:
            procs.stop_all()
            api.close()


def received(records: Path, stream: str) -> dict[int, dict]:
    """Event number -> what a worker recorded for ``stream``; every copy of an event (the
    first and last go to both workers) must agree."""
    events: dict[int, dict] = {}
    for record in read_records(str(records)):
        if record["kind"] != "result" or stream not in record["payload"]["streams"]:
            continue
        seen = record["payload"]["streams"][stream]
        assert events.setdefault(record["event"], seen) == seen, f"event {record['event']}"
    return events


def upstream_url(case: Case, port: int) -> str:
    return f"{'http' if case.transport == 'http' else 'tcp'}://127.0.0.1:{port}"


def dump_contents(path: Path) -> list[tuple[int, dict[str, tuple[str, list[bytes]]]]]:
    """An ingester dump's events: number, and per stream its type and frames."""
    return [
        (
            message.event_number,
            {
                name: (data.typ, [bytes(frame) for frame in data.frames])
                for name, data in message.streams.items()
            },
        )
        for message in read_capture(path)
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_protocol_end_to_end(runtime, tmp_path, case):
    path, sent, series = prepare(case, tmp_path)
    expected = expected_events(case, series)
    stream = f"{case.protocol}-{tmp_path.name[-8:]}".replace("_", "-")
    live_port, capture_port = free_port(), free_port()
    raw, dump = tmp_path / "raw.cbors", tmp_path / "dump.cbors"
    ingester_dump = tmp_path / "ingester-dump.cbors"
    procs = Processes(tmp_path, runtime.env)
    play = ["source", "--replay", str(path), "--protocol", case.protocol, "--bind"]
    try:
        # the live round: source -> ingester -> workers -> reducer
        procs.start("source-live", *play, upstream_url(case, live_port))
        ingester = procs.start(
            "ingester",
            "ingester",
            "--protocol",
            case.protocol,
            "--stream",
            stream,
            "--upstream",
            upstream_url(case, live_port),
            "--dump",
            str(ingester_dump),
        )
        # the capture round, alongside: a second source played to `dranspose capture`
        capture_source = procs.start("source-capture", *play, upstream_url(case, capture_port))
        capture = procs.start(
            "capture",
            "capture",
            "--protocol",
            case.protocol,
            "--upstream",
            upstream_url(case, capture_port),
            "-o",
            str(raw),
            "--count",
            str(len(case.regroup(sent)) if case.transport == "tcp" else len(sent)),
            "--no-progress",
        )
        wait_until(
            lambda: any(
                stream in c["streams"]
                for c in runtime.api.get("/api/v1/config").json()["components"]
            ),
            60,
            "ingester registration",
            procs,
        )
        request = TriggerMap.simple([stream], len(series) - 2).request.model_dump(mode="json")
        answer = runtime.api.post("/api/v1/sequence", content=json.dumps(request))
        assert answer.status_code == 200, answer.text
        scan = answer.json()
        wait_until(
            lambda: (lambda s: s["scan_id"] == scan and s["finished"])(
                runtime.api.get("/api/v1/status").json()
            ),
            TIMEOUT,
            "scan end",
            procs,
        )
        progress = runtime.api.get("/api/v1/progress").json()
        assert progress["completed"] == len(series), procs.logs()
        assert progress["failed"] == [] and progress["lost"] == []
        assert capture.wait(TIMEOUT) == 0, procs.logs()
        assert capture_source.wait(TIMEOUT) == 0, procs.logs()
        procs.stop(ingester)
    finally:
        procs.stop_all()

    live = received(runtime.records, stream)
    assert live == expected

    # the raw capture holds what the source sent (TCP: the stream cut into its messages)
    captured = cbor_items(raw)
    assert captured == (case.regroup(sent) if case.transport == "tcp" else sent)

    # capture -> convert -> replay gives the live run's results
    converted = subprocess.run(
        [
            sys.executable,
            "-m",
            "dranspose",
            "convert",
            str(raw),
            "-o",
            str(dump),
            "--protocol",
            case.protocol,
            "--stream",
            stream,
        ],
        cwd=ROOT,
        env=runtime.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert converted.returncode == 0, converted.stderr
    # the live ingester's --dump holds what convert made of the capture: every forwarded event
    assert dump_contents(ingester_dump) == dump_contents(dump)
    replay_records = tmp_path / "replay.jsonl"
    replayed = subprocess.run(
        [
            sys.executable,
            "-m",
            "dranspose",
            "replay",
            "-w",
            WORKER,
            "-r",
            REDUCER,
            "-f",
            str(dump),
            "--no-progress",
        ],
        cwd=ROOT,
        env={**runtime.env, RECORD_ENV: str(replay_records)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert received(replay_records, stream) == live

"""The original dranspose's deployment starts ours unchanged (docs/deployment.md, "Moving from
the original dranspose").

Every component runs as its own process with the command line and variables the original's Helm
chart gives it (``uvicorn dranspose.controller:app``, ``dranspose reducer -c``, ``dranspose
worker -c``, ``dranspose ingester -c ZmqPullSingleIngester -n STREAM -u URL`` with
``REDUCER_URL``, ``INGESTER_URL``, ``DUMP_PATH``, ``BEAMLINE``), and a client that knows only the
original's REST fields (``POST /api/v1/mapping``, ``GET /api/v1/progress``) runs the scan.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import httpx
import numpy as np
import pytest
import zmq

from dranspose.cli.main import build_parser, main
from dranspose.cli.original import INGESTER_CLASSES
from dranspose.cli.settings import Settings
from dranspose.io.capture import read_capture
from dranspose.protocols.registry import get_protocol
from tests.conftest import XRD_CAPTURE
from tests.payloads.recorder import RECORD_ENV
from tests.ports import free_port
from tests.support.processes import Processes, wait_until
from tests.support.tutorial import expected_reduced
from tests.test_protocol_e2e import CASES, expected_events, prepare, received

ROOT = Path(__file__).resolve().parent.parent
UVICORN = str(Path(sys.executable).with_name("uvicorn"))
GENERIC = [{"tags": ["generic"]}]  # the original's VirtualWorker


def launch(procs: Processes, argv: list[str], **env: str) -> subprocess.Popen:
    """``argv`` as its own process with the test's environment plus ``env``."""
    proc = subprocess.Popen(
        argv,
        cwd=procs.cwd,
        env={**procs.env, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    procs.procs.append(proc)
    return proc


def dranspose(*args: str) -> list[str]:
    return [sys.executable, "-m", "dranspose", *args]


def start_original_controller(procs: Processes, **env: str) -> httpx.Client:
    """``uvicorn dranspose.controller:app --host 127.0.0.1``, as the original documents it; the
    port comes from uvicorn's own variable so the command line stays the documented one."""
    port = free_port()
    launch(
        procs,
        [UVICORN, "dranspose.controller:app", "--host", "127.0.0.1"],
        UVICORN_PORT=str(port),
        **env,
    )
    return procs.client(port)


def ensemble_ready(client: httpx.Client, workers: int, streams: set[str]) -> bool:
    """The original's ``/api/v1/config`` fields: ingesters, workers, reducer."""
    config = client.get("/api/v1/config").json()
    served = {s for ingester in config["ingesters"] for s in ingester["streams"]}
    return len(config["workers"]) == workers and streams <= served and config["reducer"] is not None


def run_scan(client: httpx.Client, mapping: dict) -> dict:
    """POST the original's mapping, poll the original's progress until it says finished."""
    answer = client.post("/api/v1/mapping", json=mapping)
    assert answer.status_code == 200, answer.text
    return wait_until(
        lambda: (lambda p: p if p["finished"] else None)(client.get("/api/v1/progress").json()),
        60,
        "the original's progress: finished",
    )


def test_the_original_helm_commands_run_a_stins_scan(payload_dir, fresh_redis_url, tmp_path):
    procs = Processes(payload_dir, fresh_redis_url)
    procs.env["BEAMLINE"] = "dummymax"  # the original's chart sets it; nobody reads it
    meta = tmp_path / "build_git_meta.json"
    meta.write_text(
        json.dumps(
            {
                "commit_hash": "0123abc",
                "branch_name": "main",
                "timestamp": "2024-03-05T10:12:03",
                "repository_url": "https://example.org/payload.git",
            }
        )
    )
    procs.env["BUILD_META_FILE"] = str(meta)
    dump = tmp_path / "xrd-dump.cbors"
    upstream = free_port()
    ctx = zmq.Context()
    source = ctx.socket(zmq.PUSH)
    source.bind(f"tcp://127.0.0.1:{upstream}")
    try:
        client = start_original_controller(procs)
        launch(
            procs,
            dranspose(
                "reducer",
                "--host",
                "127.0.0.1",
                "-p",
                str(free_port()),
                "-c",
                "src.reducer:TestReducer",
            ),
            REDUCER_URL=f"tcp://127.0.0.1:{free_port()}",
        )
        launch(procs, dranspose("worker", "-n", "w1", "-c", "src.worker:TestWorker"))
        launch(procs, dranspose("worker", "-c", "src.worker:TestWorker"))  # a random name
        launch(
            procs,
            dranspose(
                "ingester",
                "--name",
                "xrd",
                "-c",
                "ZmqPullSingleIngester",
                "-u",
                f"tcp://127.0.0.1:{upstream}",
            ),
            INGESTER_URL=f"tcp://127.0.0.1:{free_port()}",
            DUMP_PATH=str(dump),
        )
        wait_until(lambda: ensemble_ready(client, 2, {"xrd"}), 60, "the original's ensemble")
        config = client.get("/api/v1/config").json()
        assert {w["name"] for w in config["workers"]} >= {"w1"}
        assert config["reducer"]["mapreduce_version"]["commit_hash"] == "0123abc"

        frames = [m.streams["xrd"].frames for m in read_capture(XRD_CAPTURE)]
        answer = client.post("/api/v1/mapping", json={"xrd": [GENERIC] * (len(frames) - 2)})
        assert answer.status_code == 200, answer.text
        for message in frames:
            source.send_multipart(message)
        progress = wait_until(
            lambda: (lambda p: p if p["finished"] else None)(client.get("/api/v1/progress").json()),
            60,
            "the original's progress: finished",
        )
        assert progress["completed_events"] == progress["total_events"] == len(frames)
        with h5py.File(payload_dir / "output" / "xrd_processed.h5") as fh:
            np.testing.assert_allclose(fh["reduced"][:], expected_reduced(2, 8), rtol=1e-6)
    finally:
        source.close(linger=0)
        ctx.term()
        procs.stop_all()
    # DUMP_PATH: every forwarded event, numbered from the series header on
    dumped = list(read_capture(dump))
    assert [m.event_number for m in dumped] == list(range(len(frames)))
    assert [[bytes(f) for f in m.streams["xrd"].frames] for m in dumped] == [
        [bytes(f) for f in message] for message in frames
    ]


def test_the_original_ingester_classes_of_two_sub_protocols(tmp_path, fresh_redis_url):
    """Contrast and Xspress3 through ZmqSubContrastIngester and ZmqSubXspressIngester, the
    payload classes given only by the original's variables."""
    cases = [
        c for c in CASES if c.id in ("contrast-contrast-dump.cbors", "xspress-xspress3-dump.cbors")
    ]
    records = tmp_path / "records.jsonl"
    procs = Processes(ROOT, fresh_redis_url)
    del procs.env["REDIS_URL"]
    procs.env.update(
        {"SERVICE_REDIS_DSN": fresh_redis_url, "PYTHONPATH": str(ROOT), RECORD_ENV: str(records)}
    )
    expected = {}
    try:
        client = start_original_controller(procs)
        launch(
            procs,
            dranspose("reducer", "--host", "127.0.0.1", "-p", str(free_port())),
            REDUCER_CLASS="tests.payloads.recorder:RecordingReducer",
            REDUCER_URL=f"tcp://127.0.0.1:{free_port()}",
        )
        for name in ("wa", "wb"):
            launch(
                procs,
                dranspose("worker"),
                WORKER_NAME=name,
                WORKER_TAGS='["generic"]',
                WORKER_CLASS="tests.payloads.recorder:ProtocolRecordingWorker",
            )
        for case in cases:
            path, _, series = prepare(case, tmp_path)
            expected[case.protocol] = expected_events(case, series)
            port = free_port()
            launch(
                procs,
                dranspose(
                    "source",
                    "--replay",
                    str(path),
                    "--protocol",
                    case.protocol,
                    "--bind",
                    f"tcp://127.0.0.1:{port}",
                ),
            )
            cls = {"contrast": "ZmqSubContrastIngester", "xspress": "ZmqSubXspressIngester"}
            launch(
                procs,
                dranspose(
                    "ingester",
                    "-n",
                    case.protocol,
                    "-c",
                    cls[case.protocol],
                    "-u",
                    f"tcp://127.0.0.1:{port}",
                ),
            )
        wait_until(lambda: ensemble_ready(client, 2, set(expected)), 60, "the original's ensemble")
        (length,) = {len(events) for events in expected.values()}  # one scan over both streams
        mapping = {stream: [GENERIC] * (length - 2) for stream in expected}
        progress = run_scan(client, mapping)
        assert progress["completed_events"] == progress["total_events"]
    finally:
        procs.stop_all()
    for stream, events in expected.items():
        assert received(records, stream) == events, stream


# -- single forms ----------------------------------------------------------------------------


def test_the_original_ingester_classes_map_to_our_protocols_and_transports():
    for cls, known in INGESTER_CLASSES.items():
        assert get_protocol(known.protocol).socket == known.transport, cls
    parsed = build_parser(Settings()).parse_args(
        ["ingester", "-n", "eiger", "-c", "ZmqPullEigerLegacyIngester", "-u", "tcp://det:9999"]
    )
    assert parsed.ingesterclass == "ZmqPullEigerLegacyIngester" and parsed.upstream == [
        "tcp://det:9999"
    ]


def test_an_unknown_ingester_class_lists_the_known_ones(capsys):
    assert main(["ingester", "-n", "eiger", "-c", "ZmqPullWhatever", "-u", "tcp://d:1"]) == 2
    err = capsys.readouterr().err
    assert "unknown ingester class 'ZmqPullWhatever'" in err
    for cls in INGESTER_CLASSES:
        assert cls in err


@pytest.mark.parametrize(
    "variable,value,expected",
    [
        ("WORKER_TAGS", "[1, 2]", "WORKER_TAGS='[1, 2]': expected a JSON list of tags"),
        ("WORKER_TAGS", "[", "WORKER_TAGS='[': expected a JSON list of tags"),
        ("REDUCER_URL", "http://r:1", "REDUCER_URL='http://r:1': expected tcp://HOST:PORT"),
        ("REDUCER_URL", "tcp://r", "REDUCER_URL='tcp://r': expected tcp://HOST:PORT"),
        ("INGESTER_STREAMS", '{"a": 1}', "INGESTER_STREAMS='{\"a\": 1}': expected a JSON list"),
        ("INGESTER_URL", "tcp://i:port", "INGESTER_URL='tcp://i:port': expected tcp://HOST:PORT"),
    ],
)
def test_a_bad_variable_is_named_with_what_was_expected(
    monkeypatch, capsys, variable, value, expected
):
    monkeypatch.setenv(variable, value)
    command = {
        "WORKER": ["worker", "-c", "m:C"],
        "REDUCER": ["reducer", "-c", "m:C"],
        "INGESTER": ["ingester", "-c", "ZmqPullSingleIngester", "-u", "tcp://d:1"],
    }[variable.split("_")[0]]
    if variable == "INGESTER_URL":
        command += ["-n", "stream"]
    assert main(command) == 2
    assert expected in capsys.readouterr().err


def completed(argv: list[str]):
    from dranspose.cli.original import complete_from_environment

    settings = Settings()
    args = build_parser(settings).parse_args(argv)
    complete_from_environment(args, settings)
    return args


def test_an_option_beats_its_variable_and_the_variable_beats_the_default(monkeypatch):
    monkeypatch.setenv("WORKER_CLASS", "env.mod:Env")
    monkeypatch.setenv("WORKER_NAME", "env-name")
    monkeypatch.setenv("WORKER_TAGS", '["fast", "gpu"]')
    from_env = completed(["worker"])
    assert (from_env.cls, from_env.name, from_env.tags) == (
        "env.mod:Env",
        "env-name",
        ["fast", "gpu"],
    )
    flags = completed(["worker", "-c", "flag.mod:Flag", "-n", "flag-name", "--tags", "slow"])
    assert (flags.cls, flags.name, flags.tags) == ("flag.mod:Flag", "flag-name", ["slow"])
    assert flags.advertise == socket.gethostbyname(socket.gethostname())  # the original's form
    assert completed(["worker", "--class", "our.mod:Ours"]).advertise == "127.0.0.1"

    monkeypatch.setenv("REDUCER_CLASS", "env.mod:Reducer")
    monkeypatch.setenv("REDUCER_URL", "tcp://dranspose-reducer:10010")
    reducer = completed(["reducer"])
    assert (reducer.cls, reducer.port, reducer.advertise, reducer.data_port) == (
        "env.mod:Reducer",
        5000,
        "dranspose-reducer",
        10010,
    )
    ours = completed(
        ["reducer", "--class", "m:C", "--advertise", "10.0.0.9", "--data-port", "9200"]
    )
    assert (ours.port, ours.advertise, ours.data_port) == (5001, "10.0.0.9", 9200)

    monkeypatch.setenv("INGESTER_STREAMS", '["pilatus"]')
    monkeypatch.setenv("UPSTREAM_URL", "tcp://det:9999")
    monkeypatch.setenv("DUMP_PATH", "/data/env.cbors")
    ingester = completed(["ingester", "-c", "ZmqSubXspressIngester"])
    assert (ingester.stream, ingester.upstream, ingester.dump) == (
        ["pilatus"],
        ["tcp://det:9999"],
        "/data/env.cbors",
    )
    assert (ingester.protocol, ingester.sub) == ("xspress", True)
    flags = completed(["ingester", "-n", "eiger", "-u", "tcp://e:1", "--dump", "/tmp/d.cbors"])
    assert (flags.stream, flags.upstream, flags.dump, flags.protocol) == (
        ["eiger"],
        ["tcp://e:1"],
        "/tmp/d.cbors",
        "stins",
    )


def test_the_original_build_meta_default_is_read_when_present(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BUILD_META_FILE", raising=False)
    default = tmp_path / "build_git_meta.json"
    assert Settings().build_meta(fallback=str(default)) is None
    default.write_text("{not json")
    assert Settings().build_meta(fallback=str(default)) is None  # reported, not fatal
    assert "provenance not used" in capsys.readouterr().err
    default.write_text(
        json.dumps(
            {"commit_hash": "c1", "branch_name": "b", "timestamp": "t", "repository_url": "u"}
        )
    )
    meta = Settings().build_meta(fallback=str(default))
    assert meta is not None and meta.commit_hash == "c1"


def test_dranspose_controller_listens_on_5000_like_the_original(tmp_path, fresh_redis_url):
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 5000))
        except OSError:
            pytest.skip("port 5000 is in use on this host")
    procs = Processes(tmp_path, fresh_redis_url)
    try:
        client = procs.client(5000)
        launch(procs, dranspose("controller", "--host", "127.0.0.1"))
        wait_until(lambda: client.get("/api/v1/progress").status_code == 200, 60, "port 5000")
    finally:
        procs.stop_all()


def test_importing_the_controller_module_starts_nothing():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, dranspose.controller as c; "
            "print(sorted(m for m in sys.modules if m.startswith(('fastapi', 'redis', 'zmq'))), "
            "c.app.controller)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "REDIS_URL": "bad"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[] None"


def test_the_original_http_ingester_runs_our_sardana_ingester(tmp_path, fresh_redis_url):
    import redis

    procs = Processes(tmp_path, fresh_redis_url)
    port = free_port()
    try:
        launch(
            procs,
            dranspose(
                "http_ingester",
                "-c",
                "dranspose.ingesters.http_sardana:app",
                "-n",
                "sardana",
                "-p",
                str(port),
                "--host",
                "127.0.0.1",
            ),
        )

        def registered() -> list[dict]:
            with redis.Redis.from_url(fresh_redis_url) as client:
                keys = client.keys("dranspose:component:ingester:*")
                return [json.loads(client.get(key)) for key in keys]

        (info,) = wait_until(registered, 60, "registration")
        assert (info["name"], info["streams"]) == ("sardana-ingester", ["sardana"])
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # it listens there
    finally:
        procs.stop_all()


def test_the_original_http_ingester_refuses_another_app(capsys):
    assert main(["http_ingester", "-c", "my.module:app", "-n", "s"]) == 2
    assert "unknown ingester app 'my.module:app'; known: dranspose.ingesters.http_sardana:app" in (
        capsys.readouterr().err
    )


def test_uvicorn_stops_with_the_reason_when_the_environment_is_bad(tmp_path, fresh_redis_url):
    """Not a controller that serves without running: the lifespan startup fails, saying why."""
    procs = Processes(tmp_path, fresh_redis_url)
    missing = tmp_path / "missing.json"
    try:
        proc = launch(
            procs,
            [UVICORN, "dranspose.controller:app", "--host", "127.0.0.1"],
            UVICORN_PORT=str(free_port()),
            BUILD_META_FILE=str(missing),
        )
        out, _ = proc.communicate(timeout=60)
    finally:
        procs.stop_all()
    assert proc.returncode != 0
    assert f"BUILD_META_FILE={str(missing)!r}: cannot open" in out

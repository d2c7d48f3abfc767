"""A failing replay never hangs the payload test that started it in a thread.

Whatever fails (the payload does not import, the parameter file is unreadable, the port is taken,
the source raises), ``done_event`` is set, the error is logged and in the summary, and the HTTP
port is released, so the waiting test fails at once with the real error.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import httpx
import pytest

from dranspose.replay import replay, run_replay
from tests.compat.harness import free_port, port_is_free
from tests.conftest import XRD_CAPTURE

STYLES = "tests.compat.styles"


def start_in_thread(
    *args: Any, **kwargs: Any
) -> tuple[threading.Thread, threading.Event, threading.Event, list[BaseException]]:
    done, stop = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            replay(*args, stop_event=stop, done_event=done, **kwargs)
        except BaseException as exc:  # what the payload test's thread would print
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, done, stop, errors


@pytest.mark.parametrize(
    "wclass, rclass, expected",
    [
        ("tests.compat.no_such_module:Worker", f"{STYLES}:CountingReducer", "no_such_module"),
        (f"{STYLES}:NoSuchWorker", f"{STYLES}:CountingReducer", "NoSuchWorker"),
        (f"{STYLES}:StreamsWorker", "tests.compat.styles:NoSuchReducer", "NoSuchReducer"),
    ],
)
@pytest.mark.expect_errors
def test_payload_that_does_not_import_sets_done_and_frees_the_port(
    wclass, rclass, expected, caplog
):
    port = free_port()
    thread, done, _stop, errors = start_in_thread(
        wclass, rclass, [XRD_CAPTURE], None, None, port=port
    )
    assert done.wait(10), "done_event must be set when replay cannot start"
    thread.join(10)
    assert not thread.is_alive()
    assert errors and expected in str(errors[0])
    assert "replay cannot start" in caplog.text and expected in caplog.text
    assert port_is_free(port)


@pytest.mark.expect_errors
def test_unreadable_parameter_file_sets_done_and_names_the_file(tmp_path, caplog):
    bad = tmp_path / "params.json"
    bad.write_bytes(b"\x00\x01 neither json, pickle nor cbor \xff")
    port = free_port()
    thread, done, _stop, errors = start_in_thread(
        f"{STYLES}:ParamsContextKwWorker",
        f"{STYLES}:CollectingReducer",
        [XRD_CAPTURE],
        None,
        bad,
        port=port,
    )
    assert done.wait(10)
    thread.join(10)
    assert errors and "params.json" in str(errors[0])
    assert "params.json" in caplog.text
    assert port_is_free(port)


@pytest.mark.expect_errors
def test_port_in_use_sets_done_with_a_clear_error(caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        thread, done, _stop, errors = start_in_thread(
            f"{STYLES}:StreamsWorker",
            f"{STYLES}:CountingReducer",
            [XRD_CAPTURE],
            None,
            None,
            port=port,
        )
        assert done.wait(20)
        thread.join(10)
    assert errors and f"{port}" in str(errors[0]) and "cannot serve" in str(errors[0])


class BrokenSource:
    def get_source_generators(self):
        def messages():
            from dranspose.event import InternalWorkerMessage, StreamData

            for number in range(3):
                yield InternalWorkerMessage(
                    event_number=number, streams={"a": StreamData(typ="raw", frames=[b"x"])}
                )
            raise RuntimeError("upstream vanished")

        return [messages()]


class EventReducer:
    def __init__(self, **kwargs):
        self.publish = {"events": [], "finished": False}

    def process_result(self, result, parameters=None):
        self.publish["events"].append(result.payload["event"])

    def finish(self, parameters=None):
        self.publish["finished"] = True


@pytest.mark.expect_errors
def test_source_failing_mid_run_finishes_reports_and_still_serves(caplog):
    port = free_port()
    thread, done, stop, errors = start_in_thread(
        f"{STYLES}:StreamsWorker", EventReducer, None, BrokenSource, None, port=port, nworkers=1
    )
    assert done.wait(10)
    published = httpx.get(f"http://127.0.0.1:{port}/api/v1/result/").json()
    assert published == {"events": [0, 1, 2], "finished": True}
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and errors == []
    assert "RuntimeError: upstream vanished" in caplog.text
    assert port_is_free(port)
    summary = run_replay(
        f"{STYLES}:StreamsWorker",
        EventReducer,
        source=BrokenSource,
        nworkers=1,
        show_progress=False,
    )
    assert summary.events == 3
    assert [(f.component, f.stage) for f in summary.failures] == [("source", "read")]
    assert "upstream vanished" in summary.failures[0].message


def test_stop_event_ends_the_server_and_releases_the_port():
    port = free_port()
    thread, done, stop, errors = start_in_thread(
        f"{STYLES}:StreamsWorker",
        f"{STYLES}:CountingReducer",
        None,
        f"{STYLES}:MessageSource",
        None,
        port=port,
        nworkers=1,
    )
    assert done.wait(10)
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/result/events").json() == [0, 1, 2, 2, 3]
    assert not port_is_free(port)
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and errors == []
    assert port_is_free(port)


@pytest.mark.expect_errors
def test_setup_failure_is_in_the_summary_of_run_replay(tmp_path):
    bad = tmp_path / "p.pkl"
    bad.write_bytes(b"\xff\xfe garbage")
    done = threading.Event()
    with pytest.raises(Exception) as info:
        run_replay(
            f"{STYLES}:StreamsWorker",
            f"{STYLES}:CountingReducer",
            [XRD_CAPTURE],
            parameter_file=bad,
            done_event=done,
            show_progress=False,
        )
    assert done.is_set()
    assert "p.pkl" in str(info.value)

"""Command-line options a deployment needs: initial parameter values and fixed data ports."""

from __future__ import annotations

import asyncio
import json
import socket

import h5py
import numpy as np
import pytest
import redis
import zmq

from dranspose.cli.main import main
from dranspose.core.parameters import MAX_PARAMETER_BYTES, ParameterError
from dranspose.core.triggermap import TriggerMap
from dranspose.io.capture import read_capture
from dranspose.io.store import Store
from dranspose.runtime.controller import Controller
from tests.conftest import XRD_CAPTURE
from tests.ports import free_port
from tests.support.processes import Processes, wait_until
from tests.support.tutorial import expected_reduced


def test_parameter_file_values_reach_the_payload(payload_dir, fresh_redis_url):
    """The controller sets the file's values at start; the scan is computed with them."""
    params = payload_dir / "initial.json"
    params.write_text(
        json.dumps([{"name": "till_x", "data": "3"}, {"name": "from_y", "data": "7"}])
    )
    procs = Processes(payload_dir, fresh_redis_url)
    api, upstream = free_port(), free_port()
    ctx = zmq.Context()
    source = ctx.socket(zmq.PUSH)
    source.bind(f"tcp://127.0.0.1:{upstream}")
    try:
        procs.start(
            "controller", "--host", "127.0.0.1", "--port", str(api), "--parameters", str(params)
        )
        procs.start("worker", "--class", "src.worker:TestWorker", "--name", "w0")
        procs.start(
            "reducer",
            "--class",
            "src.reducer:TestReducer",
            "--worker-class",
            "src.worker:TestWorker",
            "--port",
            str(free_port()),
        )
        procs.start("ingester", "--stream", "xrd", "--upstream", f"tcp://127.0.0.1:{upstream}")
        client = procs.client(api)
        wait_until(
            lambda: len(client.get("/api/v1/config").json()["components"]) >= 4, 60, "registration"
        )
        assert client.get("/api/v1/parameter/till_x").content == b"3"

        request = TriggerMap.simple(["xrd"], 9).request.model_dump(mode="json")
        assert client.post("/api/v1/sequence", content=json.dumps(request)).status_code == 200
        for message in read_capture(XRD_CAPTURE):
            source.send_multipart(message.streams["xrd"].frames)
        wait_until(lambda: client.get("/api/v1/status").json()["finished"], 60, "scan end")
        with h5py.File(payload_dir / "output" / "xrd_processed.h5") as fh:
            np.testing.assert_allclose(fh["reduced"][:], expected_reduced(3, 7), rtol=1e-6)
            assert (int(fh["till_x"][()]), int(fh["from_y"][()])) == (3, 7)
    finally:
        source.close(linger=0)
        ctx.term()
        procs.stop_all()


def test_bad_parameter_file_stops_the_controller_before_it_touches_redis(tmp_path, fresh_redis_url):
    params = tmp_path / "broken.json"
    params.write_text('[{"name": "till_x", "data": "3"},')
    proc = Processes(tmp_path, fresh_redis_url).start(
        "controller", "--port", str(free_port()), "--parameters", str(params)
    )
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert str(params) in stderr and "not valid JSON" in stderr
    with redis.Redis.from_url(fresh_redis_url) as client:
        assert client.keys("*") == []


def test_initial_values_are_written_with_one_version_bump(fresh_redis_url):
    async def scenario() -> tuple[int, int, dict[str, bytes]]:
        store = Store(fresh_redis_url, "initial")
        try:
            await store.set_parameter("other", b"x")  # version 1
            version = await Controller(store).set_initial_parameters(
                {"till_x": b"3", "from_y": b"7"}
            )
            now, raw = await store.get_parameters()
            return version, now, raw
        finally:
            await store.close()

    version, now, raw = asyncio.run(scenario())
    assert version == now == 2
    assert raw == {"other": b"x", "till_x": b"3", "from_y": b"7"}


def test_oversized_initial_value_is_refused(fresh_redis_url):
    async def scenario() -> int:
        store = Store(fresh_redis_url, "initial")
        try:
            with pytest.raises(ParameterError, match="'mask'.*exceeds the limit"):
                await Controller(store).set_initial_parameters(
                    {"mask": b"\0" * (MAX_PARAMETER_BYTES + 1)}
                )
            return await store.parameters_version()
        finally:
            await store.close()

    assert asyncio.run(scenario()) == 0


def _registered(fresh_redis_url: str, kind: str) -> list[dict]:
    with redis.Redis.from_url(fresh_redis_url) as client:
        keys = client.keys(f"dranspose:component:{kind}:*")
        return [json.loads(client.get(key)) for key in keys]


def test_fixed_data_ports_are_bound_and_advertised(payload_dir, fresh_redis_url):
    """Workers and the reducer bind --data-port and register the --advertise address with it."""
    procs = Processes(payload_dir, fresh_redis_url)
    worker_port, reducer_port = free_port(), free_port()
    try:
        procs.start(
            "worker",
            "--class",
            "src.worker:TestWorker",
            "--name",
            "w0",
            "--advertise",
            "127.0.0.1",
            "--data-port",
            str(worker_port),
        )
        procs.start(
            "reducer",
            "--class",
            "src.reducer:TestReducer",
            "--port",
            str(free_port()),
            "--advertise",
            "127.0.0.1",
            "--data-port",
            str(reducer_port),
        )
        workers = wait_until(
            lambda: _registered(fresh_redis_url, "worker"), 60, "worker registered"
        )
        reducers = wait_until(
            lambda: _registered(fresh_redis_url, "reducer"), 60, "reducer registered"
        )
        assert workers[0]["url"] == f"tcp://127.0.0.1:{worker_port}"
        assert reducers[0]["url"] == f"tcp://127.0.0.1:{reducer_port}"
        for port in (worker_port, reducer_port):  # something listens there
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        procs.stop_all()


def test_data_port_out_of_range_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["worker", "--class", "src.worker:TestWorker", "--data-port", "70000"])
    assert exc.value.code == 2
    assert "70000 is not a port number (0-65535)" in capsys.readouterr().err


def test_data_port_in_use_is_a_clear_error(payload_dir, fresh_redis_url):
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = Processes(payload_dir, fresh_redis_url).start(
            "worker", "--class", "src.worker:TestWorker", "--data-port", str(port)
        )
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 2
    assert "dranspose worker: error: Address already in use" in stderr
    assert f":{port}" in stderr and "Traceback" not in stderr

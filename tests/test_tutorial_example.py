"""Acceptance: the README quick start / tutorial example writes the expected HDF5 file."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from tests.conftest import run_cli
from tests.support.tutorial import expected_reduced


def test_replay_writes_processed_file_with_default_parameters(payload_dir):
    result = run_cli(
        [
            "replay",
            "-w",
            "src.worker:TestWorker",
            "-r",
            "src.reducer:TestReducer",
            "-f",
            "data/dump_xrd.cbors",
        ],
        cwd=payload_dir,
    )
    assert result.returncode == 0, result.stderr
    with h5py.File(payload_dir / "output" / "xrd_processed.h5") as fh:
        reduced = fh["reduced"][:]
        assert fh["till_x"][()] == 2 and fh["from_y"][()] == 8
        assert fh.attrs["dranspose_version"]
    np.testing.assert_allclose(reduced, expected_reduced(2, 8), rtol=1e-6)
    # the figures the tutorial prints, as a cross-check of the numpy computation above
    np.testing.assert_allclose(reduced, [0, 9.25, 11.25, 11.75, 4.25, 2.25, 3, 4.75, 7.75, 10.75])
    assert "replay: 11 events" in result.stderr and "0 failures" in result.stderr


def test_replay_with_parameter_file(payload_dir):
    result = run_cli(
        [
            "replay",
            "-w",
            "src.worker:TestWorker",
            "-r",
            "src.reducer:TestReducer",
            "-f",
            "data/dump_xrd.cbors",
            "-p",
            "test_params.json",
        ],
        cwd=payload_dir,
    )
    assert result.returncode == 0, result.stderr
    with h5py.File(payload_dir / "output" / "xrd_processed.h5") as fh:
        np.testing.assert_allclose(fh["reduced"][:], expected_reduced(3, 7), rtol=1e-6)
        assert fh["till_x"][()] == 3 and fh["from_y"][()] == 7
        assert fh["till_x"].dtype == np.int64


def test_build_provenance_lands_in_the_output_file(payload_dir):
    meta = {
        "commit_hash": "abc123",
        "branch_name": "main",
        "timestamp": "2026-11-21T10:00:00",
        "repository_url": "https://example.org/payload.git",
    }
    (payload_dir / "meta.json").write_text(json.dumps(meta))
    result = run_cli(
        [
            "replay",
            "-w",
            "src.worker:TestWorker",
            "-r",
            "src.reducer:TestReducer",
            "-f",
            "data/dump_xrd.cbors",
        ],
        cwd=payload_dir,
        env={"BUILD_META_FILE": str(payload_dir / "meta.json")},
    )
    assert result.returncode == 0, result.stderr
    with h5py.File(payload_dir / "output" / "xrd_processed.h5") as fh:
        assert fh.attrs["mapreduce_commit_hash"] == "abc123"
        assert fh.attrs["mapreduce_repository_url"] == meta["repository_url"]


def test_invalid_parameter_file_value_is_a_clear_cli_error(payload_dir):
    (payload_dir / "bad.json").write_text('[{"name": "till_x", "data": "three"}]')
    result = run_cli(
        [
            "replay",
            "-w",
            "src.worker:TestWorker",
            "-r",
            "src.reducer:TestReducer",
            "-f",
            "data/dump_xrd.cbors",
            "-p",
            "bad.json",
        ],
        cwd=payload_dir,
    )
    assert result.returncode == 2
    assert "'till_x'" in result.stderr and "three" in result.stderr and "int" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (
            ["-w", "src.worker:Nope", "-r", "src.reducer:TestReducer", "-f", "data/dump_xrd.cbors"],
            "has no 'Nope'",
        ),
        (
            [
                "-w",
                "src.worker:TestWorker",
                "-r",
                "src.reducer:TestReducer",
                "-f",
                "data/missing.cbors",
            ],
            "missing.cbors",
        ),
        (["-w", "src.worker:TestWorker", "-r", "src.reducer:TestReducer"], "-f"),
    ],
)
def test_cli_mistakes_give_one_line_errors(payload_dir, args, fragment):
    result = run_cli(["replay", *args], cwd=payload_dir)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_capture_exits_nonzero_and_names_the_item(payload_dir):
    blob = (payload_dir / "data" / "dump_xrd.cbors").read_bytes()
    (payload_dir / "data" / "cut.cbors").write_bytes(blob[: len(blob) // 2])
    result = run_cli(
        [
            "replay",
            "-w",
            "src.worker:TestWorker",
            "-r",
            "src.reducer:TestReducer",
            "-f",
            "data/cut.cbors",
        ],
        cwd=payload_dir,
    )
    assert result.returncode == 1
    assert "cut.cbors: item" in result.stderr and "truncated" in result.stderr
    assert "Traceback" not in result.stderr


def test_keep_alive_serves_results_until_ctrl_c(payload_dir):
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from tests.ports import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dranspose",
            "replay",
            "-w",
            "src.worker:TestWorker",
            "-r",
            "src.reducer:TestReducer",
            "-f",
            "data/dump_xrd.cbors",
            "--port",
            str(port),
            "--keep-alive",
        ],
        cwd=payload_dir,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        reduced = None
        while time.monotonic() < deadline:
            try:
                reduced = httpx.get(f"http://127.0.0.1:{port}/api/v1/result/reduced").json()
                if len(reduced) == 10:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert reduced is not None and len(reduced) == 10
        np.testing.assert_allclose(reduced[1:], expected_reduced(2, 8)[1:], rtol=1e-6)
        time.sleep(0.5)
        assert proc.poll() is None, "the replay must keep serving after its end"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "replay: 11 events" in stderr and "Traceback" not in stderr

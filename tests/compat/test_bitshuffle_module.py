"""Payloads may use either distribution of the ``bitshuffle`` module; dranspose uses neither.

Facility environments often have the conda package *bitshuffle-python* installed as
``bitshuffle``, whose ``decompress_lz4(frame_with_header, shape, dtype)`` differs from PyPI's
``decompress_lz4(body, shape, dtype, block)``. Payloads written there decode the raw frame
themselves. Here a stand-in with the conda API (tests/compat/fake_conda_bitshuffle) is first on
``PYTHONPATH`` of a subprocess that replays a capture of real EIGER bslz4 blocks, sent as STINS
images, through ``dranspose.replay.replay``: the payload's own decode and dranspose's
``parse(...).data`` must both give the pixels an independent decoder (the ``lz4`` package and a
numpy bit transpose) computes in this process.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import cbor2
import numpy as np
import pytest

from tests.compat.bslz4_reference import decode_bslz4, hdf5_encode

ROOT = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).resolve().parent / "fake_conda_bitshuffle"
EIGER_CAPTURE = ROOT / "tests" / "data" / "eiger-small.cbors"
EVENT_TAG, STREAM_TAG = 42877, 42878


def detector_frames() -> list[tuple[bytes, list[int]]]:
    """The capture's three bslz4 images cut to their whole blocks (the capture keeps 20000 bytes
    of each), with the frame header's byte count set to match: real detector data."""
    out = []
    with EIGER_CAPTURE.open("rb") as fh:
        decoder = cbor2.CBORDecoder(fh)
        while True:
            try:
                frames = decoder.decode()
            except cbor2.CBORDecodeEOF:
                return out
            if json.loads(frames[0])["htype"] != "dimage-1.0":
                continue
            blob, pos, blocks = frames[2], 12, 0
            while pos + 4 <= len(blob):
                (length,) = struct.unpack_from(">I", blob, pos)
                if pos + 4 + length > len(blob):
                    break
                pos += 4 + length
                blocks += 1
            frame = struct.pack(">QI", blocks * 8192, 8192) + blob[12:pos]
            out.append((frame, [blocks, 2048]))


def images() -> list[tuple[bytes, list[int], str]]:
    """Three real detector images (uint32) and two synthetic ones from the HDF5 filter."""
    real = [(frame, shape, "uint32") for frame, shape in detector_frames()]
    rng = np.random.default_rng(21)
    synthetic = []
    for shape, dtype in (((37, 53), "uint16"), ((64, 129), "uint32")):
        array = rng.integers(0, 4000, size=shape).astype(dtype)
        synthetic.append((hdf5_encode(array, "bslz4"), list(shape), dtype))
    return real + synthetic


def write_capture(path: Path, items: list[tuple[bytes, list[int], str]]) -> None:
    """An event capture written with plain cbor2: stream "eiger" of STINS messages."""

    def event(number: int, frames: list[bytes]) -> cbor2.CBORTag:
        return cbor2.CBORTag(
            EVENT_TAG, [number, {"eiger": cbor2.CBORTag(STREAM_TAG, ["STINS", frames])}]
        )

    with path.open("wb") as fh:
        start = {"htype": "header", "msg_number": 0, "filename": ""}
        cbor2.dump(event(0, [json.dumps(start).encode()]), fh)
        for number, (frame, shape, dtype) in enumerate(items, start=1):
            header = {
                "htype": "image",
                "msg_number": number,
                "frame": number - 1,
                "shape": shape,
                "type": dtype,
                "compression": "bslz4",
            }
            cbor2.dump(event(number, [json.dumps(header).encode(), frame]), fh)
        end = {"htype": "series_end", "msg_number": len(items) + 1}
        cbor2.dump(event(len(items) + 1, [json.dumps(end).encode()]), fh)


SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    import numpy as np

    # dranspose first: parsing and encoding bslz4 must not import any bitshuffle module
    from dranspose.data.stream1 import Stream1Data, encode_bslz4
    from dranspose.event import StreamData
    from dranspose.middlewares import eiger_legacy, stream1
    from dranspose.middlewares.stream1 import parse
    from dranspose.replay import replay

    probe = np.arange(3000, dtype=np.uint16).reshape(50, 60)
    packet = Stream1Data.from_array(probe, msg_number=1, frame=0, compression="bslz4")
    assert np.array_equal(parse(packet.to_stream_data()).data, probe)
    encode_bslz4(probe)
    imported_by_dranspose = "bitshuffle" in sys.modules

    import bitshuffle  # the payload's module: the conda-API stand-in

    def digest(array):
        return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()

    class Worker:
        def __init__(self, *args, **kwargs):
            pass

        def process_event(self, event, parameters=None):
            stream = event.streams.get("eiger")
            header = json.loads(bytes(stream.frames[0]))
            if header["htype"] != "image":
                return None
            dtype = np.dtype(header["type"])
            mine = bitshuffle.decompress_lz4(stream.frames[1], header["shape"], dtype)
            ours = parse(stream).data
            return {"frame": header["frame"], "sum": int(mine.sum(dtype=np.uint64)),
                    "sha": digest(mine), "ours_sum": int(ours.sum(dtype=np.uint64)),
                    "ours_sha": digest(ours), "shape": list(mine.shape),
                    "dtype": mine.dtype.str}

    RESULTS = []

    class Reducer:
        def __init__(self, *args, **kwargs):
            self.publish = {}

        def process_result(self, result, parameters=None):
            if result.payload is not None:
                RESULTS.append(result.payload)

    summary = replay(Worker, Reducer, [sys.argv[1]], None, None, None, None, 2, True, None,
                     None)

    # the stand-in really has the conda API: a PyPI-style call with a block size fails
    try:
        bitshuffle.decompress_lz4(np.zeros(4, np.uint8), (2,), np.dtype("uint16"), 0)
        pypi_style = "accepted"
    except TypeError:
        pypi_style = "TypeError"
    print(json.dumps({
        "imported_by_dranspose": imported_by_dranspose,
        "module": bitshuffle.__file__, "conda_api": bitshuffle.CONDA_API,
        "pypi_style_call": pypi_style, "ok": summary.ok, "events": summary.events,
        "failures": [f.describe() for f in summary.failures],
        "results": sorted(RESULTS, key=lambda r: r["frame"]),
    }))
""")


def run_with_conda_bitshuffle(tmp_path: Path, *args: str) -> dict:
    script = tmp_path / "conda_payload.py"
    script.write_text(SCRIPT)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FAKE), str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def conda_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("conda-bitshuffle")
    items = images()
    capture = tmp_path / "eiger-bslz4.cbors"
    write_capture(capture, items)
    return run_with_conda_bitshuffle(tmp_path, str(capture)), items


def test_the_conda_stand_in_is_first_on_the_path(conda_run):
    report, _ = conda_run
    assert Path(report["module"]).resolve() == (FAKE / "bitshuffle" / "__init__.py").resolve()
    assert report["conda_api"] is True
    assert report["pypi_style_call"] == "TypeError"


def test_dranspose_does_not_import_bitshuffle(conda_run):
    report, _ = conda_run
    assert report["imported_by_dranspose"] is False


def test_payload_decoding_the_raw_frame_with_conda_bitshuffle(conda_run):
    report, items = conda_run
    assert report["ok"], report["failures"]
    assert report["events"] == len(items) + 2
    results = report["results"]
    assert [r["frame"] for r in results] == list(range(len(items)))
    for result, (frame, shape, dtype) in zip(results, items):
        expected = decode_bslz4(frame, np.dtype(dtype)).reshape(shape)
        digest = hashlib.sha256(expected.tobytes()).hexdigest()
        total = int(expected.sum(dtype=np.uint64))
        assert (result["shape"], result["dtype"]) == (shape, np.dtype(dtype).str)
        assert (result["sum"], result["sha"]) == (total, digest)  # the payload's own decode
        assert (result["ours_sum"], result["ours_sha"]) == (total, digest)  # parse(...).data


def test_the_detector_images_are_real_data():
    frames = detector_frames()
    assert [shape for _, shape in frames] == [[123, 2048]] * 3
    sums = [int(decode_bslz4(f, np.dtype("<u4")).sum(dtype=np.uint64)) for f, _ in frames]
    assert len(set(sums)) == 3  # three different images


def test_no_module_of_dranspose_imports_bitshuffle():
    offenders = []
    for path in sorted((ROOT / "dranspose").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno}"
                for name in names
                if name.split(".")[0] == "bitshuffle"
            ]
    assert offenders == []


def test_no_test_needs_bitshuffle():
    offenders = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if FAKE in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno}"
                for name in names
                if name.split(".")[0] == "bitshuffle"
            ]
    assert offenders == []

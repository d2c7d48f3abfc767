"""A payload written for the original dranspose 0.2.0's EIGER legacy packets runs unchanged.

The original's parsed image held the ``dimage_d-1.0`` descriptor and the raw data frame as a
dict in ``data``, and its payloads decoded the pixels themselves: ``data["buffer"]`` with
``data["shape"]`` (``[x, y]``), ``data["type"]`` and ``data["encoding"]``, here with the vendor's
``dectris.compression`` as beamline payloads do (``bitshuffle`` would do the same, see
test_bitshuffle_module.py). Ours' ``data`` is the decoded array that also answers those keys.

A capture of one EIGER legacy series (the header with ``header_detail`` ``"all"`` and an
appendix, the three real detector images of ``tests/data/eiger-small.cbors`` cut to their whole
bitshuffle/LZ4 blocks, synthetic ``bs16-lz4<``, ``bs32-lz4<`` and raw ``<``/``>`` images, the
series end) is replayed through ``dranspose.replay.replay`` with a worker in the original's style
and one in ours; both must give the pixels an independent decoder computes here.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import cbor2
import numpy as np
import pytest

from dranspose.data.eiger_legacy import EigerLegacyEnd, EigerLegacyHeader, EigerLegacyImage
from dranspose.event import EventData
from dranspose.io.capture import MESSAGE_TAG, STREAM_TAG
from dranspose.middlewares.eiger_legacy import parse
from dranspose.replay import replay
from tests.compat.bslz4_reference import decode_bslz4

ROOT = Path(__file__).resolve().parents[2]
EIGER_CAPTURE = ROOT / "tests" / "data" / "eiger-small.cbors"
CONFIG = {"real_time": 9999900, "start_time": 103597359252740, "stop_time": 103597369252640}


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# --- the payloads ---------------------------------------------------------------------------------


class OriginalStyleWorker:
    """Reads only what the original's packets had: ``data`` as a dict, ``config["htype"]``."""

    def __init__(self, *args, **kwargs):
        pass

    def process_event(self, event: EventData, parameters=None, *args, **kwargs):
        if "eiger" not in event.streams:
            return None
        packet = parse(event.streams["eiger"])
        if isinstance(packet, EigerLegacyHeader):
            return {"event": event.event_number, "header": packet.info, "appendix": packet.appendix}
        if isinstance(packet, EigerLegacyEnd):
            return {"event": event.event_number, "end": packet.htype}
        if not isinstance(packet, EigerLegacyImage):
            return None
        from dectris.compression import decompress

        info = packet.data
        assert "buffer" in info and info["htype"] == "dimage_d-1.0"
        assert packet.config["htype"] == "dconfig-1.0"
        buffer = info["buffer"]
        assert info["size"] == len(buffer)
        encoding = info["encoding"]
        dtype = np.dtype(info["type"]).newbyteorder(encoding[-1])
        shape = info["shape"][::-1]
        if encoding.startswith("bs"):
            raw = decompress(buffer, "bslz4", elem_size=dtype.itemsize)
        else:
            raw = buffer
        image = np.frombuffer(raw, dtype=dtype).reshape(shape)
        return {
            "event": event.event_number,
            "frame": packet.frame,
            "shape": list(image.shape),
            "dtype": image.dtype.str,
            "sum": int(image.sum(dtype=np.uint64)),
            "sha": digest(image),
            "start_time": packet.config["start_time"],
            "keys": sorted(info.keys()),
        }


class OursStyleWorker:
    """Reads ours' fields and the decoded ``data`` array."""

    def __init__(self, *args, **kwargs):
        pass

    def process_event(self, event: EventData, parameters=None, *args, **kwargs):
        if "eiger" not in event.streams:
            return None
        packet = parse(event.streams["eiger"])
        if isinstance(packet, EigerLegacyHeader):
            return {"event": event.event_number, "header": packet.info, "appendix": packet.appendix}
        if isinstance(packet, EigerLegacyEnd):
            return {"event": event.event_number, "end": packet.htype}
        if not isinstance(packet, EigerLegacyImage):
            return None
        image = packet.data
        return {
            "event": event.event_number,
            "frame": packet.frame,
            "shape": list(image.shape),
            "dtype": image.dtype.str,
            "sum": int(image.sum(dtype=np.uint64)),
            "sha": digest(image),
            "start_time": packet.config["start_time"],
            "keys": sorted(image.keys()),
        }


class CollectingReducer:
    results: list[dict[str, Any]] = []

    def __init__(self, *args, **kwargs):
        self.publish: dict[str, Any] = {}

    def process_result(self, result, parameters=None):
        if result.payload is not None:
            CollectingReducer.results.append(result.payload)


# --- the capture ----------------------------------------------------------------------------------


def detector_images() -> list[list[bytes]]:
    """The capture's three real images cut to their whole bslz4 blocks (it keeps 20000 bytes of
    each), descriptor shape and size and the frame header's byte count set to match."""
    out = []
    with EIGER_CAPTURE.open("rb") as fh:
        decoder = cbor2.CBORDecoder(fh)
        while True:
            try:
                frames = list(decoder.decode())
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
            descriptor = json.loads(frames[1])
            descriptor |= {"shape": [2048, blocks], "size": len(frame)}
            out.append([frames[0], json.dumps(descriptor).encode(), frame, *frames[3:]])


def series() -> list[list[bytes]]:
    """Every message of one series, as the detector sends them."""
    rng = np.random.default_rng(7)
    header = EigerLegacyHeader(
        series=6,
        header_detail="all",
        info={"nimages": 7, "description": "Dectris EIGER2 CdTe 9M"},
        flatfield=np.ones((3, 4), np.float32),
        pixel_mask=np.zeros((3, 4), np.uint32),
        countrate_table=np.zeros((2, 3), np.float32),
        appendix={"collect_dict": {"col_id": 128579}},
    )
    messages = [[bytes(f) for f in header.to_stream_data().frames]]
    messages += detector_images()
    synthetic = [
        (rng.integers(0, 4000, size=(37, 53)).astype("<u2"), "bs16-lz4<"),
        (rng.integers(0, 2**31, size=(64, 129)).astype("<u4"), "bs32-lz4<"),
        (rng.integers(0, 2**31, size=(5, 7)).astype("<u4"), "<"),
        (rng.integers(0, 2**31, size=(6, 3)).astype(">u4"), ">"),
    ]
    for frame, (array, encoding) in enumerate(synthetic, start=3):
        image = EigerLegacyImage.from_array(
            array, series=6, frame=frame, encoding=encoding, config=CONFIG, appendix={}
        )
        messages.append([bytes(f) for f in image.to_stream_data().frames])
    messages.append([bytes(f) for f in EigerLegacyEnd(series=6).to_stream_data().frames])
    return messages


def write_capture(path: Path, messages: list[list[bytes]]) -> None:
    with path.open("wb") as fh:
        for number, frames in enumerate(messages):
            stream = cbor2.CBORTag(STREAM_TAG, ["EIGER_LEGACY", frames])
            cbor2.dump(cbor2.CBORTag(MESSAGE_TAG, [number, {"eiger": stream}]), fh)


def reference(frames: list[bytes]) -> dict[str, Any]:
    """An image message's pixels by an independent decoder (the lz4 package and numpy)."""
    descriptor = json.loads(frames[1])
    dtype = np.dtype(descriptor["type"]).newbyteorder(descriptor["encoding"][-1])
    shape = tuple(reversed(descriptor["shape"]))
    if descriptor["encoding"].startswith("bs"):
        image = decode_bslz4(frames[2], dtype).reshape(shape)
    else:
        image = np.frombuffer(frames[2], dtype).reshape(shape)
    return {
        "shape": list(shape),
        "dtype": dtype.str,
        "sum": int(image.sum(dtype=np.uint64)),
        "sha": digest(image),
    }


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> tuple[Path, list[list[bytes]]]:
    messages = series()
    path = tmp_path_factory.mktemp("eiger-legacy") / "eiger-series.cbors"
    write_capture(path, messages)
    return path, messages


def run(worker: type, path: Path) -> list[dict[str, Any]]:
    CollectingReducer.results = []
    summary = replay(worker, CollectingReducer, [path], None, None, nworkers=1)
    assert summary.ok, [f.describe() for f in summary.failures]
    return sorted(CollectingReducer.results, key=lambda r: r["event"])


@pytest.fixture(scope="module")
def original_results(capture) -> list[dict[str, Any]]:
    return run(OriginalStyleWorker, capture[0])


@pytest.fixture(scope="module")
def ours_results(capture) -> list[dict[str, Any]]:
    return run(OursStyleWorker, capture[0])


def test_the_capture_is_one_series_with_real_detector_images(capture):
    _, messages = capture
    htypes = [json.loads(frames[0])["htype"] for frames in messages]
    assert htypes == ["dheader-1.0"] + ["dimage-1.0"] * 7 + ["dseries_end-1.0"]
    assert len(messages[0]) == 9 and {len(m) for m in messages[1:-1]} == {5}  # the original's
    assert [json.loads(m[1])["shape"] for m in messages[1:4]] == [[2048, 123]] * 3
    assert len({reference(m)["sum"] for m in messages[1:4]}) == 3


def test_original_style_payload_decodes_the_buffer_to_the_reference(capture, original_results):
    _, messages = capture
    assert [r["event"] for r in original_results] == list(range(len(messages)))
    assert original_results[0]["header"]["nimages"] == 7
    assert original_results[0]["appendix"] == {"collect_dict": {"col_id": 128579}}
    assert original_results[-1]["end"] == "dseries_end-1.0"
    keys = sorted(["htype", "shape", "type", "encoding", "size", "buffer"])
    for result, frames in zip(original_results[1:-1], messages[1:-1]):
        expected = reference(frames)
        assert {key: result[key] for key in expected} == expected
        assert result["keys"] == keys
        assert result["start_time"] == json.loads(frames[3])["start_time"]


def test_original_style_and_ours_give_the_same_numbers(original_results, ours_results):
    assert ours_results == original_results

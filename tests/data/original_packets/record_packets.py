"""Record how the original dranspose 0.2.0 builds and parses stream1, contrast, xspress3 and
EIGER legacy packets, for tests/test_compat_packets.py (the project's tests cannot import the
original).

Each protocol gets ``<protocol>.json`` here with two lists of cases:

* ``"original"``: frames built the way the original and its sources build them (its packet
  constructors and ``to_stream_data()``, its test source's JSON header plus pixel frame, the
  Dectris frame layout for EIGER legacy with the first frame from the original's model), and
  what the original's ``parse`` made of them. The tests parse the same frames with ours.
* ``"ours"``: frames built by *our* packets (their ``to_stream_data()``), and what the original's
  ``parse`` made of them. The tests rebuild the same packets, check the frames are still these
  bytes, and compare the original's reading with our packets' values.

The two directions need the two code bases, so this runs twice, first in our venv (it writes the
``"ours"`` frames), then in the original's (it adds its own frames and parses everything)::

    .venv/bin/python tests/data/original_packets/record_packets.py ours
    /work/orig/.venv/bin/python tests/data/original_packets/record_packets.py original

Rerun both when our packets' frames change on purpose. Run from any directory: the script's own
directory, not the working directory, is on ``sys.path``, so each venv imports its own dranspose.
Values are stored as JSON; bytes, numpy arrays and numpy scalars are tagged (see :func:`plain`).
A parse that raises is recorded as ``{"error": <exception class name>}``.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).parent
PROTOCOLS = ("stream1", "contrast", "xspress3", "eiger_legacy")
META_NAMES = (
    "ocr",
    "AllEvents",
    "AllGood",
    "ClockTicks",
    "TotalTicks",
    "ResetTicks",
    "event_widths",
    "dtc",
)


# --- values as JSON ------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """``value`` as JSON: bytes, arrays, numpy scalars and tuples tagged, dicts and lists walked."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, np.ndarray):
        return {
            "__ndarray__": value.dtype.str,
            "shape": list(value.shape),
            "values": value.tolist(),
        }
    if isinstance(value, np.generic):
        return {"__npscalar__": value.dtype.str, "value": value.item()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return {"__tuple__": [plain(v) for v in value]}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def unplain(value: Any) -> Any:
    """The inverse of :func:`plain`."""
    if isinstance(value, dict):
        if "__bytes__" in value:
            return base64.b64decode(value["__bytes__"])
        if "__ndarray__" in value:
            array = np.array(value["values"], dtype=np.dtype(value["__ndarray__"]))
            return array.reshape(value["shape"])
        if "__npscalar__" in value:
            return np.dtype(value["__npscalar__"]).type(value["value"])
        if "__tuple__" in value:
            return tuple(unplain(v) for v in value["__tuple__"])
        return {k: unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unplain(v) for v in value]
    return value


def frame_bytes(frame: Any) -> bytes:
    return bytes(frame.bytes) if hasattr(frame, "bytes") else bytes(frame)


# --- sample values shared by both directions -----------------------------------------------------


def image(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape) * 3 + 1


def xspress_meta(channels: int) -> dict[str, np.ndarray]:
    return {
        "ocr": np.linspace(0.5, 2.0, channels),
        "AllEvents": np.arange(channels, dtype=np.uint32) + 2,
        "AllGood": np.arange(channels, dtype=np.uint32),
        "ClockTicks": np.full(channels, 7999990, dtype=np.uint32),
        "TotalTicks": np.full(channels, 7999990, dtype=np.uint32),
        "ResetTicks": np.array([0, 91, 0, 3][:channels], dtype=np.uint32),
        "event_widths": np.full(channels, 6, dtype=np.int32),
        "dtc": np.linspace(1.0, 1.25, channels),
    }


CONTRAST_SNAPSHOT = {"attenuator1_x": 0.048, "vfm_yaw": 0.15148492851039919, "xrf_x": 94.99875}
CONTRAST_POINT = {
    "sx": -2.000431059888797,
    "pseudo": {"x": np.array([-2.00405186]), "analog_x": np.array([-1.99962707])},
    "xspress3": {"type": "Link", "filename": "/data/scan_000002_xspress3.hdf5", "universal": True},
}
EIGER_INFO = {"nimages": 3, "description": "Dectris EIGER2 CdTe 9M", "x_pixels_in_detector": 4}
EIGER_APPENDIX = {"collect_dict": {"col_id": 128579, "exp_type": "test"}}
EIGER_CONFIG = {"real_time": 9999900, "start_time": 103597359252740, "stop_time": 103597369252640}


# --- frames built by ours (run in our venv) ------------------------------------------------------


def ours_cases() -> dict[str, list[tuple[str, Callable[[], Any]]]]:
    """Our packets, by protocol: (case name, a function building the packet's StreamData).

    The tests import this to rebuild them; only our dranspose is imported, when called."""
    from dranspose.data.contrast import (
        ContrastFinished,
        ContrastHeartbeat,
        ContrastRunning,
        ContrastStarted,
    )
    from dranspose.data.eiger_legacy import EigerLegacyEnd, EigerLegacyHeader, EigerLegacyImage
    from dranspose.data.stream1 import Stream1Data, Stream1End, Stream1Start
    from dranspose.data.xspress3 import XspressEnd, XspressImage, XspressStart

    pixels = image((3, 4), "uint16")

    def stream1_pixels_appended() -> Any:
        # an image built without data, the pixels appended as the original's sources send them
        packet = Stream1Data(msg_number=2, frame=1, shape=[3, 4], type="uint16", compression="none")
        stream = packet.to_stream_data()
        stream.frames.append(pixels.tobytes())
        return stream

    eiger_pixels = image((3, 4), "uint32")
    return {
        "stream1": [
            ("start", lambda: Stream1Start(msg_number=0, filename="/data/x.h5").to_stream_data()),
            (
                "image",
                lambda: Stream1Data.from_array(
                    pixels, msg_number=1, frame=0, exposure=0.1
                ).to_stream_data(),
            ),
            ("image_pixels_appended", stream1_pixels_appended),
            (
                "image_without_data",
                lambda: Stream1Data(
                    msg_number=3, frame=2, shape=[3, 4], type="uint16", compression="none"
                ).to_stream_data(),
            ),
            (
                "image_bslz4",
                lambda: Stream1Data.from_array(
                    pixels, msg_number=4, frame=3, compression="bslz4"
                ).to_stream_data(),
            ),
            ("end", lambda: Stream1End(msg_number=5).to_stream_data()),
        ],
        "contrast": [
            (
                "started",
                lambda: ContrastStarted(
                    path="/data/raw",
                    scannr=2,
                    description="mesh sx -2 2 3",
                    snapshot=CONTRAST_SNAPSHOT,
                ).to_stream_data(),
            ),
            ("running", lambda: ContrastRunning(dt=2.41, **CONTRAST_POINT).to_stream_data()),
            (
                "finished",
                lambda: ContrastFinished(
                    path="/data/raw", scannr=2, description="mesh"
                ).to_stream_data(),
            ),
            ("heartbeat", lambda: ContrastHeartbeat(status="heartbeat").to_stream_data()),
        ],
        "xspress3": [
            ("start", lambda: XspressStart(filename="/data/x.hdf5").to_stream_data()),
            (
                "image",
                lambda: XspressImage.from_array(
                    image((4, 8), "uint32"), frame=0, exptime=0.1, meta=xspress_meta(4)
                ).to_stream_data(),
            ),
            (
                "image_original_style",
                lambda: XspressImage(
                    frame=1,
                    shape=[2, 8],
                    type="uint32",
                    data=image((2, 8), "uint32"),
                    meta=xspress_meta(2),
                ).to_stream_data(),
            ),
            (
                "image_header_only",
                lambda: XspressImage(frame=2, shape=[2, 8], type="uint32").to_stream_data(),
            ),
            ("end", lambda: XspressEnd().to_stream_data()),
        ],
        "eiger_legacy": [
            (
                "header_all",
                lambda: EigerLegacyHeader(
                    series=6,
                    header_detail="all",
                    info=EIGER_INFO,
                    appendix=EIGER_APPENDIX,
                    flatfield=np.ones((3, 4), np.float32),
                    pixel_mask=np.zeros((3, 4), np.uint32),
                    countrate_table=np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3),
                ).to_stream_data(),
            ),
            (
                "image_raw",
                lambda: EigerLegacyImage.from_array(
                    eiger_pixels,
                    series=6,
                    frame=0,
                    encoding="<",
                    hash="ab",
                    config=EIGER_CONFIG,
                    appendix={"row": 0},
                ).to_stream_data(),
            ),
            (
                "image_bslz4",
                lambda: EigerLegacyImage.from_array(
                    eiger_pixels, series=6, frame=1, config=EIGER_CONFIG, appendix={"row": 1}
                ).to_stream_data(),
            ),
            ("end", lambda: EigerLegacyEnd(series=6).to_stream_data()),
        ],
    }


def record_ours() -> None:
    for protocol, cases in ours_cases().items():
        entries = [
            {"case": name, "frames": [plain(frame_bytes(f)) for f in build().frames]}
            for name, build in cases
        ]
        write(protocol, {"ours": entries})


# --- frames built by the original (run in its venv), and its parse of everything ---------------


def original_cases() -> dict[str, list[tuple[str, list[bytes]]]]:
    """Frames built as the original and its sources build them, by protocol."""
    import dranspose.data.contrast as contrast
    import dranspose.data.eiger_legacy as eiger
    import dranspose.data.stream1 as stream1
    import dranspose.data.xspress3 as xspress

    def frames(stream: Any) -> list[bytes]:
        return [frame_bytes(f) for f in stream.frames]

    def dumped(value: Any) -> bytes:
        return json.dumps(value).encode()  # as zmq's send_json, used by the original's sources

    pixels = image((3, 4), "uint16")
    # the original's test source (tests/stream1.py): a JSON header, then the pixel frame
    acquisition_image = {
        "htype": "image",
        "frame": 0,
        "shape": [3, 4],
        "type": "uint16",
        "compression": "none",
        "msg_number": 1,
        "exposure": 0.1,
    }
    eiger_pixels = image((3, 4), "uint32")
    return {
        "stream1": [
            ("source_start", [dumped({"htype": "header", "filename": "/d/x.h5", "msg_number": 0})]),
            ("source_image", [dumped(acquisition_image), pixels.tobytes()]),
            ("source_end", [dumped({"htype": "series_end", "msg_number": 2})]),
            (
                "start",
                frames(stream1.Stream1Start(msg_number=0, filename="/d/y.h5").to_stream_data()),
            ),
            (
                "image",
                frames(
                    stream1.Stream1Data(
                        msg_number=1,
                        frame=0,
                        shape=[3, 4],
                        type="uint16",
                        compression="none",
                        data=pixels,
                    ).to_stream_data()
                ),
            ),
            (
                "image_header_plus_pixels",
                frames(
                    stream1.Stream1Data(
                        msg_number=2, frame=1, shape=[3, 4], type="uint16", compression="none"
                    ).to_stream_data()
                )
                + [pixels.tobytes()],
            ),
            (
                "image_without_data",
                frames(
                    stream1.Stream1Data(
                        msg_number=3, frame=2, shape=[3, 4], type="uint16", compression="none"
                    ).to_stream_data()
                ),
            ),
            ("end", frames(stream1.Stream1End(msg_number=4).to_stream_data())),
        ],
        "contrast": [
            (
                "started",
                frames(
                    contrast.ContrastStarted(
                        path="/data/raw", scannr=2, description="mesh", snapshot=CONTRAST_SNAPSHOT
                    ).to_stream_data()
                ),
            ),
            (
                "running",
                frames(contrast.ContrastRunning(dt=2.41, **CONTRAST_POINT).to_stream_data()),
            ),
            (
                "finished",
                frames(
                    contrast.ContrastFinished(
                        path="/data/raw", scannr=2, description="mesh"
                    ).to_stream_data()
                ),
            ),
            ("heartbeat", frames(contrast.ContrastHeartbeat(status="heartbeat").to_stream_data())),
        ],
        "xspress3": [
            ("start", frames(xspress.XspressStart(filename="/d/x.hdf5").to_stream_data())),
            (
                "image",
                frames(
                    xspress.XspressImage(
                        frame=0,
                        shape=[4, 8],
                        exptime=0.1,
                        type="uint32",
                        data=image((4, 8), "uint32"),
                        meta=xspress_meta(4),
                    ).to_stream_data()
                ),
            ),
            (
                "image_header_only",
                frames(xspress.XspressImage(frame=1, shape=[2, 8], type="uint32").to_stream_data()),
            ),
            ("end", frames(xspress.XspressEnd().to_stream_data())),
        ],
        "eiger_legacy": [
            (
                # Dectris layout for header_detail "all" with an appendix: 9 frames
                "header_all",
                [
                    eiger.EigerLegacyHeader(htype="dheader-1.0", series=6, header_detail="all")
                    .model_dump_json()
                    .encode(),
                    dumped(EIGER_INFO),
                    dumped({"htype": "dflatfield-1.0", "shape": [4, 3], "type": "float32"}),
                    np.ones((3, 4), "<f4").tobytes(),
                    dumped({"htype": "dpixelmask-1.0", "shape": [4, 3], "type": "uint32"}),
                    np.zeros((3, 4), "<u4").tobytes(),
                    dumped({"htype": "dcountrate_table-1.0", "shape": [3, 2], "type": "float32"}),
                    np.linspace(0, 1, 6, dtype="<f4").tobytes(),
                    dumped(EIGER_APPENDIX),
                ],
            ),
            (
                # one image with an appendix: 5 frames, raw little-endian pixels
                "image_raw",
                [
                    eiger.EigerLegacyImage(htype="dimage-1.0", frame=0, series=6, hash="ab")
                    .model_dump_json()
                    .encode(),
                    dumped(
                        {
                            "htype": "dimage_d-1.0",
                            "shape": [4, 3],
                            "type": "uint32",
                            "encoding": "<",
                            "size": eiger_pixels.nbytes,
                        }
                    ),
                    eiger_pixels.astype("<u4").tobytes(),
                    dumped({"htype": "dconfig-1.0", **EIGER_CONFIG}),
                    dumped({"row": 0}),
                ],
            ),
            (
                "end",
                [
                    eiger.EigerLegacyEnd(htype="dseries_end-1.0", series=6)
                    .model_dump_json()
                    .encode()
                ],
            ),
        ],
    }


def original_parse(protocol: str, frames: list[bytes]) -> dict[str, Any]:
    """What the original's ``parse`` makes of ``frames``: class name and every value it set."""
    import importlib

    from dranspose.event import StreamData

    typ = {"stream1": "STINS", "contrast": "contrast", "xspress3": "xspress"}
    module = {"xspress3": "xspress"}.get(protocol, protocol)
    parse = importlib.import_module(f"dranspose.middlewares.{module}").parse
    stream = StreamData(typ=typ.get(protocol, "EIGER_LEGACY"), frames=frames)
    try:
        packet = parse(data=stream)
    except Exception as exc:  # the original refuses with asserts and whatever its decoders raise
        return {"error": type(exc).__name__}
    return {"class": type(packet).__name__, "values": plain(packet.model_dump())}


def record_original() -> None:
    import importlib.util

    if importlib.util.find_spec("dranspose.core") is not None:  # a package of ours only
        sys.exit("this is our dranspose, not the original: run it in the original's venv")
    built = original_cases()
    for protocol in PROTOCOLS:
        recorded = read(protocol)
        for entry in recorded["ours"]:
            entry["parsed_by_original"] = original_parse(protocol, unplain(entry["frames"]))
        recorded["original"] = [
            {
                "case": name,
                "frames": [plain(f) for f in frames],
                "parsed_by_original": original_parse(protocol, frames),
            }
            for name, frames in built[protocol]
        ]
        write(protocol, recorded)


def read(protocol: str) -> dict[str, Any]:
    return json.loads((HERE / f"{protocol}.json").read_text())


def write(protocol: str, content: dict[str, Any]) -> None:
    text = json.dumps(content, indent=1, sort_keys=True)
    (HERE / f"{protocol}.json").write_text(text + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["ours"]:
        record_ours()
    elif sys.argv[1:] == ["original"]:
        record_original()
    else:
        sys.exit(__doc__)

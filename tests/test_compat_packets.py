"""Packets of stream1, contrast, xspress3 and EIGER legacy against the original dranspose 0.2.0,
both ways, from what the original itself did (recorded by
tests/data/original_packets/record_packets.py, which says how to rerun it):

* frames built the way the original and its sources build them parse with our middlewares to
  the values the original's parse gave, or are refused by both;
* frames our packets build are the recorded ones, and the original's parse read from them the
  values our packets hold (or refused them where ours refuses them too).

The original's packets carry some values in another form than ours; :func:`as_original` puts
ours in that form, documented in docs/payload-api.md, "Compatibility". An EIGER image's ``data``
is the original's dict (descriptor and raw ``"buffer"``) through its string keys while being the
decoded array, and its ``config`` keeps the ``htype``: those are compared as they are.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dranspose.core.event import StreamData
from dranspose.middlewares.contrast import parse as parse_contrast
from dranspose.middlewares.eiger_legacy import parse as parse_eiger
from dranspose.middlewares.stream1 import parse as parse_stream1
from dranspose.middlewares.xspress import parse as parse_xspress
from dranspose.protocols.common.errors import ParseError
from tests.compat.bslz4_reference import decode_bslz4

RECORDED = Path(__file__).parent / "data" / "original_packets"
_spec = importlib.util.spec_from_file_location("record_packets", RECORDED / "record_packets.py")
assert _spec is not None and _spec.loader is not None
record = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(record)

PARSERS = {
    "stream1": (parse_stream1, "STINS"),
    "contrast": (parse_contrast, "contrast"),
    "xspress3": (parse_xspress, "xspress"),
    "eiger_legacy": (parse_eiger, "EIGER_LEGACY"),
}


def recorded(protocol: str, direction: str) -> list[dict[str, Any]]:
    content = json.loads((RECORDED / f"{protocol}.json").read_text())
    return [record.unplain(entry) for entry in content[direction]]


def cases(direction: str) -> list[Any]:
    return [
        pytest.param(protocol, entry, id=f"{protocol}-{entry['case']}")
        for protocol in PARSERS
        for entry in recorded(protocol, direction)
    ]


def as_original(protocol: str, packet: Any, frames: list[bytes]) -> dict[str, Any]:
    """Our packet's values in the form the original's parse gives them (without the fields ours
    adds that the message left at their default ``None``, e.g. a contrast ``snapshot``)."""
    values = {
        key: value
        for key, value in packet.model_dump().items()
        if value is not None or key in packet.model_fields_set
    }
    if protocol == "stream1" and packet.htype == "image" and packet.compression in (None, "none"):
        values["data"] = packet.data  # the original decodes uncompressed images only
    if protocol == "xspress3" and packet.htype == "image":
        values["data"] = packet.data
        values["meta"] = packet.meta
    if protocol == "eiger_legacy" and packet.htype == "dheader-1.0":
        values = {key: values[key] for key in ("htype", "series", "header_detail", "info")} | {
            "appendix": packet.appendix
        }
    if protocol == "eiger_legacy" and packet.htype == "dimage-1.0":
        # the original's data dict read through the array's string keys, config as it is
        values = {key: values[key] for key in ("htype", "series", "frame", "hash")} | {
            "data": dict(packet.data),
            "config": packet.config,
        }
    return values


def assert_same(ours: Any, original: Any, path: str = "packet") -> None:
    """Equal values of equal types, arrays with equal dtype, shape and elements."""
    if isinstance(original, np.ndarray):
        assert isinstance(ours, np.ndarray), f"{path}: {type(ours).__name__}, not an array"
        assert (ours.dtype, ours.shape) == (original.dtype, original.shape), path
        assert np.array_equal(ours, original), f"{path}: {ours!r} != {original!r}"
    elif isinstance(original, dict):
        assert isinstance(ours, dict), f"{path}: {type(ours).__name__}, not a dict"
        assert sorted(ours) == sorted(original), (
            f"{path}: keys {sorted(ours)} != {sorted(original)}"
        )
        for key in original:
            assert_same(ours[key], original[key], f"{path}.{key}")
    elif isinstance(original, (list, tuple)):
        assert type(ours) is type(original) and len(ours) == len(original), f"{path}: {ours!r}"
        for index, (a, b) in enumerate(zip(ours, original)):
            assert_same(a, b, f"{path}[{index}]")
    else:
        assert type(ours) is type(original) and ours == original, (
            f"{path}: {ours!r} != {original!r}"
        )


def check_against_original(protocol: str, frames: list[bytes], original: dict[str, Any]) -> Any:
    """Our parse of ``frames`` gives what the original's gave, or refuses what it refused."""
    parse, typ = PARSERS[protocol]
    stream = StreamData(typ=typ, frames=frames)
    if "error" in original:
        with pytest.raises(ParseError):
            parse(data=stream)
        return None
    packet = parse(data=stream)
    assert type(packet).__name__ == original["class"]
    assert_same(as_original(protocol, packet, frames), original["values"])
    return packet


@pytest.mark.parametrize(("protocol", "entry"), cases("original"))
def test_frames_built_by_the_original_parse_with_ours_to_its_values(protocol, entry):
    packet = check_against_original(protocol, entry["frames"], entry["parsed_by_original"])
    if protocol == "eiger_legacy" and entry["case"] == "image_raw":
        # the original leaves the pixels raw; ours decodes them ("<": little-endian, [x, y])
        raw = entry["parsed_by_original"]["values"]["data"]["buffer"]
        assert_same(packet.data, np.frombuffer(raw, "<u4").reshape(3, 4))


@pytest.mark.parametrize(("protocol", "entry"), cases("ours"))
def test_frames_built_by_ours_parse_with_the_original_to_our_values(protocol, entry):
    build = dict(record.ours_cases()[protocol])[entry["case"]]
    frames = [bytes(f) for f in build().frames]
    assert frames == entry["frames"], "our frames changed: rerun record_packets.py (its docstring)"
    original = entry["parsed_by_original"]
    if "error" in original:  # the original refuses it: so must ours, never a different packet
        with pytest.raises(ParseError):
            PARSERS[protocol][0](StreamData(typ=PARSERS[protocol][1], frames=frames))
        return
    ours = check_against_original(protocol, frames, original)
    if protocol == "stream1" and entry["case"] == "image_bslz4":
        # the original leaves compressed pixels undecoded; ours decodes them to what was sent
        assert_same(ours.data, record.image((3, 4), "uint16"))


def eiger_images(direction: str) -> list[Any]:
    return [
        pytest.param(entry, id=f"{direction}-{entry['case']}")
        for entry in recorded("eiger_legacy", direction)
        if entry["parsed_by_original"].get("class") == "EigerLegacyImage"
    ]


@pytest.mark.parametrize("entry", eiger_images("original") + eiger_images("ours"))
def test_eiger_image_data_is_the_originals_dict_and_the_array(entry):
    frames = entry["frames"]
    original = entry["parsed_by_original"]["values"]
    packet = parse_eiger(StreamData(typ="EIGER_LEGACY", frames=frames))
    data = packet.data
    expected = original["data"]  # the descriptor's keys and "buffer": the raw frame
    assert sorted(data.keys()) == sorted(expected)
    assert list(data.keys())[-1] == "buffer"  # appended to the descriptor, as the original did
    for key, value in expected.items():
        assert key in data and data.get(key) == value
        assert_same(data[key], value, f"data[{key!r}]")
    assert_same(dict(data.items()), expected)
    assert_same([data[key] for key in data.keys()], list(data.values()))
    assert data.get("missing") is None and data.get("missing", 5) == 5 and "missing" not in data
    with pytest.raises(KeyError):
        data["missing"]
    assert_same(packet.config, original["config"])
    assert packet.config["htype"] == "dconfig-1.0"
    # the same descriptor as ours' fields
    assert (packet.shape, packet.type) == (expected["shape"], expected["type"])
    assert (packet.encoding, packet.size) == (expected["encoding"], expected["size"])
    # and the decoded array, as the original's payloads decode the buffer themselves
    dtype = np.dtype(expected["type"]).newbyteorder(expected["encoding"][-1])
    shape = tuple(reversed(expected["shape"]))
    if expected["encoding"].startswith("bs"):
        pixels = decode_bslz4(expected["buffer"], dtype).reshape(shape)
    else:
        pixels = np.frombuffer(expected["buffer"], dtype).reshape(shape)
    assert isinstance(data, np.ndarray) and (data.shape, data.dtype) == (shape, dtype)
    np.testing.assert_array_equal(data, pixels)
    assert_same(np.asarray(data), pixels)
    assert_same(data[1:, ::2], pixels[1:, ::2])
    assert int(data.sum()) == int(pixels.sum())


def test_every_protocol_is_recorded_both_ways():
    for protocol in PARSERS:
        for direction in ("original", "ours"):
            assert len(recorded(protocol, direction)) >= 3, (protocol, direction)

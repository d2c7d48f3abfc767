"""Dectris EIGER legacy (stream v1) packets: the recorded capture, decoding checked against
independent decoders, building frames, and every malformed case."""

from __future__ import annotations

import copy
import json
import pickle
import struct
import sys
from pathlib import Path

import cbor2
import h5py
import numpy as np
import pytest
import zmq
from pydantic import ValidationError

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.eiger_legacy.packets import (
    EIGER_LEGACY_TYPE,
    EigerImageArray,
    EigerLegacyEnd,
    EigerLegacyHeader,
    EigerLegacyImage,
    EigerLegacyPacketAdapter,
    parse_encoding,
)
from dranspose.protocols.eiger_legacy.parser import parse
from dranspose.protocols.stream1.packets import encode_bslz4
from tests.compat.bslz4_reference import decode_bslz4

CAPTURE = Path(__file__).parent / "data" / "eiger-small.cbors"
# EIGER2 CdTe 9M: Dectris shapes are [x, y], numpy arrays (y, x)
WIDTH, HEIGHT = 3108, 3262
BLOCK_BYTES = 8192  # block size in the capture's bslz4 headers: 2048 uint32 pixels
BLOCK_PIXELS = BLOCK_BYTES // 4
GAP = 0xFFFFFFFF  # value of pixels in module gaps and masked pixels


def read_items() -> list[list[bytes]]:
    """Every item of the raw capture (the frames of one ZMQ message), decoded with plain cbor2."""
    items = []
    with CAPTURE.open("rb") as fh:
        decoder = cbor2.CBORDecoder(fh)
        while True:
            try:
                items.append(list(decoder.decode()))
            except cbor2.CBORDecodeEOF:
                return items


@pytest.fixture(scope="module")
def raw() -> list[list[bytes]]:
    return read_items()


def eiger(*frames: object, typ: str = EIGER_LEGACY_TYPE) -> StreamData:
    return StreamData.model_construct(typ=typ, frames=list(frames))


def parse_error(stream: StreamData) -> str:
    with pytest.raises(ParseError) as info:
        parse(stream)
    return str(info.value)


def data_error(stream: StreamData) -> str:
    """Parsing succeeds (the frame is structurally sound); reading ``data`` raises."""
    image = parse(stream)
    assert "data" not in image.__dict__
    with pytest.raises(ParseError) as info:
        _ = image.data
    return str(info.value)


def complete_blocks(blob: bytes) -> tuple[int, int]:
    """How many whole compressed blocks follow the 12-byte header, and where they end."""
    pos, count = 12, 0
    while pos + 4 <= len(blob):
        (length,) = struct.unpack_from(">I", blob, pos)
        if pos + 4 + length > len(blob):
            break
        pos += 4 + length
        count += 1
    return count, pos


def trimmed_image(frames: list[bytes]) -> tuple[list[bytes], int]:
    """A capture image cut to its whole compressed blocks.

    The capture keeps only the first 20000 bytes of each data frame. The whole blocks in them
    are the detector's own bitshuffle/LZ4 output; with the header's byte count and the
    descriptor's shape and size set to match, they form a valid image of ``blocks`` rows of
    2048 pixels.
    """
    blocks, end = complete_blocks(frames[2])
    blob = struct.pack(">QI", blocks * BLOCK_BYTES, BLOCK_BYTES) + frames[2][12:end]
    descriptor = json.loads(frames[1])
    descriptor["shape"] = [BLOCK_PIXELS, blocks]
    descriptor["size"] = len(blob)
    return [frames[0], json.dumps(descriptor).encode(), blob, *frames[3:]], blocks


def trimmed_header(frames: list[bytes]) -> list[bytes]:
    """The capture's header with flatfield and pixel mask cut to their first whole row."""
    out = list(frames)
    for index in (2, 4):
        descriptor = json.loads(frames[index])
        descriptor["shape"] = [WIDTH, 1]
        out[index] = json.dumps(descriptor).encode()
        out[index + 1] = frames[index + 1][: WIDTH * 4]
    return out


def hdf5_decode(chunk: bytes, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Decode one bslz4 chunk with the HDF5 bitshuffle filter (hdf5plugin), not the decoder
    dranspose uses: write it as the only chunk of a dataset and read the dataset back."""
    import hdf5plugin  # a dependency of dranspose (its encoder)

    with h5py.File("in-memory.h5", "w", driver="core", backing_store=False) as fh:
        dset = fh.create_dataset(
            "x", shape=shape, dtype=dtype, chunks=shape, **hdf5plugin.Bitshuffle(cname="lz4")
        )
        dset.id.write_direct_chunk((0,) * len(shape), chunk)
        return dset[()]


def hdf5_encode(array: np.ndarray) -> bytes:
    """The chunk the HDF5 bitshuffle/LZ4 filter writes for ``array``: an independent encoder."""
    import hdf5plugin

    with h5py.File("in-memory.h5", "w", driver="core", backing_store=False) as fh:
        dset = fh.create_dataset(
            "x", data=array, chunks=array.shape, **hdf5plugin.Bitshuffle(cname="lz4")
        )
        mask, chunk = dset.id.read_direct_chunk((0,) * array.ndim)
    assert mask == 0
    return chunk


def image_frames(
    blob: bytes,
    shape: list[int],
    type_: str = "uint32",
    encoding: str = "bs32-lz4<",
    size: object = "auto",
    appendix: object = None,
) -> list[bytes]:
    descriptor = {"htype": "dimage_d-1.0", "shape": shape, "type": type_, "encoding": encoding}
    if size == "auto":
        descriptor["size"] = len(blob)
    elif size is not ...:
        descriptor["size"] = size
    frames = [
        b'{"htype": "dimage-1.0", "series": 2, "frame": 7, "hash": "abc"}',
        json.dumps(descriptor).encode(),
        blob,
        b'{"htype": "dconfig-1.0", "start_time": 10, "stop_time": 20, "real_time": 10}',
    ]
    if appendix is not None:
        frames.append(appendix)
    return frames


# --- the recorded capture ---------------------------------------------------------------------


def test_capture_is_one_series(raw):
    htypes = [json.loads(frames[0])["htype"] for frames in raw]
    assert htypes == ["dheader-1.0"] + ["dimage-1.0"] * 3 + ["dseries_end-1.0"]
    assert [len(frames) for frames in raw] == [9, 5, 5, 5, 1]


def test_capture_header_layout(raw):
    frames = raw[0]
    assert json.loads(frames[0]) == {"header_detail": "all", "htype": "dheader-1.0", "series": 6}
    info = json.loads(frames[1])
    assert "htype" not in info
    assert (info["x_pixels_in_detector"], info["y_pixels_in_detector"]) == (WIDTH, HEIGHT)
    descriptors = [json.loads(frames[i]) for i in (2, 4, 6)]
    assert descriptors == [
        {"htype": "dflatfield-1.0", "shape": [WIDTH, HEIGHT], "type": "float32"},
        {"htype": "dpixelmask-1.0", "shape": [WIDTH, HEIGHT], "type": "uint32"},
        {"htype": "dcountrate_table-1.0", "shape": [2, 1001], "type": "float32"},
    ]
    # the capture cut large frames to 20000 bytes; the count-rate table is whole
    assert [len(frames[i]) for i in (3, 5, 7)] == [20000, 20000, 2 * 1001 * 4]
    assert sorted(json.loads(frames[8])) == ["collect_dict", "dozor_dict"]


def test_capture_image_layout(raw):
    for number, frames in enumerate(raw[1:4]):
        first = json.loads(frames[0])
        assert (first["htype"], first["series"], first["frame"]) == ("dimage-1.0", 6, number)
        descriptor = json.loads(frames[1])
        assert descriptor["encoding"] == "bs32-lz4<"
        assert (descriptor["shape"], descriptor["type"]) == ([WIDTH, HEIGHT], "uint32")
        assert len(frames[2]) == 20000 < descriptor["size"]
        # the 12-byte bitshuffle header is there: whole image size, block size in bytes
        assert struct.unpack(">QI", frames[2][:12]) == (WIDTH * HEIGHT * 4, BLOCK_BYTES)
        assert json.loads(frames[3])["htype"] == "dconfig-1.0"
        assert frames[4] == b"{}"


@pytest.mark.parametrize("number", [1, 2, 3])
def test_capture_images_are_truncated(raw, number):
    size = json.loads(raw[number][1])["size"]
    assert parse_error(eiger(*raw[number])) == (
        f"EIGER_LEGACY image series=6 frame={number - 1}: frame 2 (image data) has 20000 bytes "
        f"but the dimage_d-1.0 descriptor gives size {size}; the frame is truncated"
    )


def test_capture_header_is_truncated(raw):
    assert parse_error(eiger(*raw[0])) == (
        "EIGER_LEGACY header series=6 frame 3 (dflatfield-1.0 data): 20000 bytes, expected "
        "40553184 for shape [3108, 3262] of float32 (4 bytes each); the frame is truncated"
    )


def test_capture_end(raw):
    end = parse(eiger(*raw[4]))
    assert isinstance(end, EigerLegacyEnd)
    assert end.series == 6


# --- capture images cut to whole blocks: real detector data ---------------------------------------


@pytest.mark.parametrize("number", [1, 2, 3])
def test_capture_image_blocks_decode(raw, number):
    frames, blocks = trimmed_image(raw[number])
    assert blocks == 123
    image = parse(eiger(*frames))
    assert isinstance(image, EigerLegacyImage)
    assert image.data.shape == (blocks, BLOCK_PIXELS)
    assert image.data.dtype == np.dtype("<u4")
    assert image.shape == [BLOCK_PIXELS, blocks]
    assert (image.type, image.encoding) == ("uint32", "bs32-lz4<")


@pytest.mark.parametrize("number", [1, 2, 3])
def test_capture_image_blocks_match_a_numpy_decoder(raw, number):
    frames, blocks = trimmed_image(raw[number])
    blob = frames[2]
    # LZ4 from the lz4 package, the bit transpose in numpy: no C bitshuffle code at all
    reference = decode_bslz4(blob, np.dtype("<u4")).reshape(blocks, BLOCK_PIXELS)
    data = parse(eiger(*frames)).data
    np.testing.assert_array_equal(data, reference)
    assert data.sum(dtype=np.uint64) == reference.sum(dtype=np.uint64)


@pytest.mark.parametrize("number", [1, 2, 3])
def test_capture_image_blocks_match_the_hdf5_filter(raw, number):
    frames, blocks = trimmed_image(raw[number])
    reference = hdf5_decode(frames[2], (blocks, BLOCK_PIXELS), "<u4")
    data = parse(eiger(*frames)).data
    np.testing.assert_array_equal(data, reference)
    counts = data[data != GAP]
    expected = reference[reference != GAP]
    assert counts.sum(dtype=np.uint64) == expected.sum(dtype=np.uint64)


@pytest.mark.parametrize(
    "number, total, gaps, counts",
    [
        (1, 11630771436045, 2708, 1185),
        (2, 11630771435930, 2708, 1070),
        (3, 11630771436037, 2708, 1177),
    ],
)
def test_capture_image_block_values(raw, number, total, gaps, counts):
    data = parse(eiger(*trimmed_image(raw[number])[0])).data
    assert int(data.sum(dtype=np.uint64)) == total
    assert int((data == GAP).sum()) == gaps
    assert int(data[data != GAP].sum(dtype=np.uint64)) == counts
    assert total == gaps * GAP + counts


def test_capture_image_metadata(raw):
    frames = raw[2]
    image = parse(eiger(*trimmed_image(frames)[0]))
    assert (image.series, image.frame, image.hash) == (6, 1, "815e4907ce3482ec3cc4d33a1145cd44")
    assert image.config == {
        "htype": "dconfig-1.0",
        "real_time": 9999900,
        "start_time": 103597369252740,
        "stop_time": 103597379252640,
    }
    assert image.appendix == {}


def test_capture_header_cut_to_one_row(raw):
    frames = trimmed_header(raw[0])
    header = parse(eiger(*frames))
    assert isinstance(header, EigerLegacyHeader)
    assert (header.series, header.header_detail) == (6, "all")
    assert header.info == json.loads(frames[1])
    assert header.info["description"] == "Dectris EIGER2 CdTe 9M"
    np.testing.assert_array_equal(
        header.flatfield, np.frombuffer(frames[3], "<f4").reshape(1, WIDTH)
    )
    assert header.pixel_mask.shape == (1, WIDTH) and header.pixel_mask.dtype == np.dtype("<u4")
    assert int(header.pixel_mask.sum()) == int(np.frombuffer(frames[5], "<u4").sum())
    assert header.appendix == json.loads(frames[8])
    assert header.appendix["collect_dict"]["col_id"] == 128579


def test_capture_countrate_table_is_1001_pairs(raw):
    header = parse(eiger(*trimmed_header(raw[0])))
    table = header.countrate_table
    # shape [2, 1001] is [x, y]: 1001 rows of (true, measured) count rates
    assert table.shape == (1001, 2) and table.dtype == np.dtype("<f4")
    values = struct.unpack("<2002f", raw[0][7])
    assert table[1].tolist() == [values[2], values[3]]
    assert table[:, 0].tolist() == sorted(table[:, 0].tolist())
    assert table[0].tolist() == [0.0, 0.0]


# --- synthetic images, against independent encoders --------------------------------------------


@pytest.mark.parametrize(
    "dtype, encoding", [("uint32", "bs32-lz4<"), ("uint16", "bs16-lz4<"), ("uint8", "bs8-lz4<")]
)
def test_hdf5_filter_chunks_decode(dtype, encoding):
    rng = np.random.default_rng(1)
    array = rng.integers(0, 200, size=(37, 53)).astype(dtype)
    frames = image_frames(hdf5_encode(array), [53, 37], dtype, encoding)
    image = parse(eiger(*frames))
    assert image.data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(image.data, array)
    assert image.data.sum() == array.sum()


def test_shape_is_x_then_y():
    # three rows of four pixels, written row after row
    blob = struct.pack("<12H", *range(12))
    image = parse(eiger(*image_frames(blob, [4, 3], "uint16", "<")))
    assert image.data.shape == (3, 4)
    assert image.data[1].tolist() == [4, 5, 6, 7]


def test_raw_little_endian_is_a_view():
    buf = bytearray(struct.pack("<6I", *range(6)))
    image = parse(eiger(*image_frames(buf, [3, 2], "uint32", "<")))
    assert image.data.tolist() == [[0, 1, 2], [3, 4, 5]]
    buf[0:4] = struct.pack("<I", 99)
    assert image.data[0, 0] == 99


def test_raw_bytes_frame_is_read_only():
    image = parse(eiger(*image_frames(struct.pack("<4I", 1, 2, 3, 4), [2, 2], "uint32", "<")))
    assert not image.data.flags.writeable


def test_raw_big_endian():
    image = parse(eiger(*image_frames(struct.pack(">3I", 1, 2, 70000), [3, 1], "uint32", ">")))
    assert image.data.dtype == np.dtype(">u4")
    assert image.data.tolist() == [[1, 2, 70000]]


def test_bitshuffle_big_endian():
    array = np.arange(300, dtype=">u2").reshape(15, 20)
    frames = image_frames(encode_bslz4(array), [20, 15], "uint16", "bs16-lz4>")
    data = parse(eiger(*frames)).data
    assert data.dtype == np.dtype(">u2")
    assert data.tolist() == array.tolist()


def test_zmq_frames():
    array = np.arange(64, dtype="<u4").reshape(8, 8)
    frames = [zmq.Frame(f) for f in image_frames(hdf5_encode(array), [8, 8])]
    np.testing.assert_array_equal(parse(eiger(*frames)).data, array)


def test_size_may_be_absent():
    array = np.arange(20, dtype="<u4").reshape(4, 5)
    image = parse(eiger(*image_frames(hdf5_encode(array), [5, 4], size=...)))
    assert image.size is None
    np.testing.assert_array_equal(image.data, array)


def test_image_without_appendix():
    frames = image_frames(struct.pack("<2I", 5, 6), [2, 1], "uint32", "<")
    image = parse(eiger(*frames))
    assert image.appendix is None
    assert (image.series, image.frame, image.hash) == (2, 7, "abc")
    assert image.config == {
        "htype": "dconfig-1.0",
        "start_time": 10,
        "stop_time": 20,
        "real_time": 10,
    }


def test_appendix_that_is_not_json_stays_bytes():
    frames = image_frames(struct.pack("<2I", 5, 6), [2, 1], "uint32", "<", appendix=b"run 5\xff")
    assert parse(eiger(*frames)).appendix == b"run 5\xff"


def test_lz4_needs_the_optional_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "lz4", None)
    monkeypatch.setitem(sys.modules, "lz4.block", None)
    frames = image_frames(b"\x00" * 10, [2, 2], "uint32", "lz4<")
    assert data_error(eiger(*frames)) == (
        "EIGER_LEGACY image series=2 frame=7: encoding 'lz4<' (plain LZ4) needs the optional "
        "'lz4' package, which is not installed"
    )


def test_lz4_images_decode():
    block = pytest.importorskip("lz4.block")
    array = np.arange(600, dtype="<u2").reshape(20, 30) % 7
    blob = block.compress(array.tobytes(), store_size=False)
    image = parse(eiger(*image_frames(blob, [30, 20], "uint16", "lz4<")))
    np.testing.assert_array_equal(image.data, array)


def test_lz4_frame_too_short_for_its_image():
    frames = image_frames(b"\x00" * 3, [40, 40], "uint32", "lz4<")
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY image series=2 frame=7: frame 2 (image data) of 3 bytes cannot be an LZ4 "
        "block of 6400 bytes (LZ4 expands at most 255x); the frame is truncated or corrupt"
    )


def test_lz4_corrupt():
    pytest.importorskip("lz4.block")
    message = data_error(eiger(*image_frames(b"\xff" * 20, [2, 2], "uint32", "lz4<")))
    assert message.startswith(
        "EIGER_LEGACY image series=2 frame=7: frame 2 (image data) is not a valid LZ4 block of "
        "16 bytes ("
    )


# --- series headers -----------------------------------------------------------------------------


def header_frame(detail: str, **fields: object) -> bytes:
    header = {"htype": "dheader-1.0", "series": 3, "header_detail": detail, **fields}
    return json.dumps(header).encode()


def test_header_none():
    header = parse(eiger(header_frame("none")))
    assert (header.series, header.header_detail) == (3, "none")
    assert header.info is None and header.flatfield is None and header.appendix is None


def test_header_none_with_appendix():
    header = parse(eiger(header_frame("none"), b'{"sample": "Si"}'))
    assert header.info is None
    assert header.appendix == {"sample": "Si"}


def test_header_basic():
    header = parse(eiger(header_frame("basic"), b'{"nimages": 3}'))
    assert header.info == {"nimages": 3}
    assert header.appendix is None and header.pixel_mask is None


def test_header_basic_with_appendix():
    header = parse(eiger(header_frame("basic"), b'{"nimages": 3}', b"plain text"))
    assert header.appendix == b"plain text"


def test_header_round_trip():
    header = EigerLegacyHeader(
        series=9,
        header_detail="all",
        info={"nimages": 1},
        flatfield=np.full((2, 3), 1.5, dtype="<f4"),
        pixel_mask=np.array([[0, 1, 0], [4, 0, 0]], dtype="<u4"),
        countrate_table=np.zeros((4, 2), dtype="<f4"),
        appendix={"a": 1},
    )
    frames = header.to_stream_data().frames
    assert len(frames) == 9
    assert json.loads(frames[2]) == {"htype": "dflatfield-1.0", "shape": [3, 2], "type": "float32"}
    again = parse(eiger(*frames))
    assert again.model_dump() == header.model_dump()
    for name in ("flatfield", "pixel_mask", "countrate_table"):
        np.testing.assert_array_equal(getattr(again, name), getattr(header, name))


def test_image_round_trip_every_encoding():
    array = np.arange(35, dtype="<u4").reshape(5, 7)
    for encoding in ("bs32-lz4<", "<", ">"):
        image = EigerLegacyImage.from_array(
            array, series=1, frame=4, encoding=encoding, hash="h", config={"real_time": 1}
        )
        frames = image.to_stream_data().frames
        assert json.loads(frames[1])["shape"] == [7, 5]
        again = parse(eiger(*frames))
        assert again.model_dump() == image.model_dump() | {"size": len(frames[2])}
        np.testing.assert_array_equal(again.data, array)


def test_end_round_trip():
    end = EigerLegacyEnd(series=4, extra="x")
    assert parse(end.to_stream_data()) == end


def test_packet_adapter(raw):
    packet = EigerLegacyPacketAdapter.validate_json(raw[4][0])
    assert isinstance(packet, EigerLegacyEnd)
    packet = EigerLegacyPacketAdapter.validate_json(raw[0][0])
    assert isinstance(packet, EigerLegacyHeader)


@pytest.mark.parametrize(
    "text, parts",
    [
        ("bs32-lz4<", (32, True, "<")),
        ("lz4<", (None, True, "<")),
        ("<", (None, False, "<")),
        ("bs16-lz4>", (16, True, ">")),
        ("bs32<", None),
        ("lz4", None),
        ("bs12-lz4<", None),
    ],
)
def test_parse_encoding(text, parts):
    assert parse_encoding(text) == parts


def test_extra_fields_are_kept():
    frames = image_frames(struct.pack("<2I", 5, 6), [2, 1], "uint32", "<")
    frames[0] = b'{"htype": "dimage-1.0", "series": 2, "frame": 7, "hash": "", "x": 1}'
    assert parse(eiger(*frames)).x == 1


# --- malformed input ------------------------------------------------------------------------


def test_no_frames():
    assert parse_error(eiger()) == (
        "EIGER_LEGACY message has no frames; expected a JSON object in frame 0"
    )


def test_first_frame_not_json():
    message = parse_error(eiger(b"\x00\x01"))
    assert message.startswith("EIGER_LEGACY frame 0 (first frame): not valid JSON (")


def test_first_frame_json_list():
    assert parse_error(eiger(b"[]")) == (
        "EIGER_LEGACY frame 0 (first frame): got JSON list []; expected a JSON object"
    )


def test_unknown_htype():
    assert parse_error(eiger(b'{"htype": "dimage_d-1.0"}')) == (
        "EIGER_LEGACY frame 0: htype 'dimage_d-1.0'; expected htype to be one of "
        "'dheader-1.0', 'dimage-1.0' or 'dseries_end-1.0'"
    )


def test_missing_htype():
    assert parse_error(eiger(b'{"series": 1}')).startswith("EIGER_LEGACY frame 0: no 'htype' field")


@pytest.mark.parametrize("count", [3, 6])
def test_image_frame_count(count):
    frames = image_frames(b"", [0, 0], "uint32", "<", appendix=b"{}") + [b"x"]
    assert parse_error(eiger(*frames[:count])) == (
        f"EIGER_LEGACY image frame=7: {count} frames, expected 4 (dimage-1.0, dimage_d-1.0, "
        f"data, dconfig-1.0) or 5 with an appendix"
    )


def test_descriptor_with_wrong_htype():
    frames = image_frames(b"", [0, 0], "uint32", "<")
    frames[1] = b'{"htype": "dconfig-1.0"}'
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY frame 1: htype 'dconfig-1.0'; expected htype 'dimage_d-1.0'"
    )


def test_descriptor_missing_fields():
    frames = image_frames(b"", [0, 0], "uint32", "<")
    frames[1] = b'{"htype": "dimage_d-1.0", "shape": [1, 1]}'
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY frame 1 (dimage_d-1.0 descriptor): type, encoding missing; expected "
        "shape, type and encoding"
    )


def test_descriptor_with_wrong_types():
    frames = image_frames(b"", [0, 0], "uint32", "<")
    frames[1] = b'{"htype": "dimage_d-1.0", "shape": "[x,y]", "type": "uint32", "encoding": "<"}'
    message = parse_error(eiger(*frames))
    assert message.startswith(
        "EIGER_LEGACY frames 0-1 (dimage-1.0 and dimage_d-1.0): invalid 'dimage-1.0' message: "
        "shape: "
    )


def test_config_with_wrong_htype():
    frames = image_frames(b"", [0, 0], "uint32", "<")
    frames[3] = b"{}"
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY frame 3: no 'htype' field; expected htype 'dconfig-1.0'"
    )


def test_config_not_json():
    frames = image_frames(b"", [0, 0], "uint32", "<")
    frames[3] = b"\xff"
    assert parse_error(eiger(*frames)).startswith(
        "EIGER_LEGACY frame 3 (dconfig-1.0): not valid JSON ("
    )


@pytest.mark.parametrize("encoding", ["bs32-zstd<", "bslz4", "lz4", ""])
def test_unknown_encoding(encoding):
    frames = image_frames(b"", [0, 0], "uint32", encoding)
    assert parse_error(eiger(*frames)) == (
        f"EIGER_LEGACY image series=2 frame=7: unknown encoding {encoding!r}; expected '<' or "
        f"'>' (raw), 'lz4<' or a bitshuffle/LZ4 encoding such as 'bs32-lz4<'"
    )


def test_bitshuffle_bits_must_match_the_type():
    array = np.arange(16, dtype="<u4").reshape(4, 4)
    frames = image_frames(hdf5_encode(array), [4, 4], "uint32", "bs16-lz4<")
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY image series=2 frame=7: encoding 'bs16-lz4<' shuffles 16-bit elements "
        "but type 'uint32' has 32-bit pixels"
    )


@pytest.mark.parametrize("type_", ["str", "object", "uint33"])
def test_type_not_numeric(type_):
    frames = image_frames(b"", [0, 0], type_, "<")
    assert parse_error(eiger(*frames)) == (
        f"EIGER_LEGACY image series=2 frame=7: descriptor type {type_!r} is not a numeric "
        f"numpy dtype; expected a name such as 'uint16' or 'uint32'"
    )


def test_negative_shape():
    frames = image_frames(b"", [-1, 2], "uint32", "<")
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY image series=2 frame=7: descriptor shape [-1, 2] has a negative dimension"
    )


def test_data_longer_than_size():
    frames = image_frames(b"\x00" * 16, [2, 2], "uint32", "<", size=12)
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY image series=2 frame=7: frame 2 (image data) has 16 bytes but the "
        "dimage_d-1.0 descriptor gives size 12; the frame is longer than announced"
    )


def test_raw_data_of_wrong_length():
    frames = image_frames(b"\x00" * 12, [2, 2], "uint32", "<")
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY image series=2 frame=7: frame 2 (image data) has 12 bytes, expected 16 "
        "for shape [2, 2] of uint32 (4 bytes each)"
    )


def test_bslz4_header_for_a_different_size():
    array = np.arange(16, dtype="<u4").reshape(4, 4)
    frames = image_frames(hdf5_encode(array), [8, 4])
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY image series=2 frame=7: bslz4 header announces 64 uncompressed bytes, "
        "expected 128 bytes for shape [4, 8] of uint32 (4 bytes each)"
    )


def test_bslz4_truncated_without_size_names_frame_2():
    array = np.random.default_rng(3).integers(0, 9, size=(64, 64)).astype("<u4")
    blob = hdf5_encode(array)
    frames = image_frames(blob[:-10], [64, 64], size=...)
    message = parse_error(eiger(*frames))
    assert message.startswith("EIGER_LEGACY image series=2 frame=7: bslz4 frame 2 (image data) ")
    assert "frame 1" not in message


def test_bslz4_corrupt_block():
    array = np.random.default_rng(4).integers(0, 9, size=(64, 64)).astype("<u4")
    blob = bytearray(hdf5_encode(array))
    blob[16:40] = b"\xff" * 24
    message = data_error(eiger(*image_frames(bytes(blob), [64, 64])))
    assert message.startswith(
        "EIGER_LEGACY image series=2 frame=7: bslz4 frame 2 (image data) is corrupt: block 0 of 2 "
    )
    assert "dectris-compression failed" in message
    assert "frame 1" not in message


# --- decoding on first access -------------------------------------------------------------------


def test_compressed_image_is_decoded_on_first_access():
    array = np.random.default_rng(6).integers(0, 9, size=(64, 64)).astype("<u4")
    image = parse(eiger(*image_frames(hdf5_encode(array), [64, 64])))
    assert "data" not in image.__dict__
    data = image.data
    assert image.data is data and data.flags.writeable
    np.testing.assert_array_equal(data, array)


def test_lazy_image_repr_keeps_the_field_order():
    array = np.arange(64, dtype="<u4").reshape(8, 8)
    frames = image_frames(hdf5_encode(array), [8, 8])
    lazy, eager = parse(eiger(*frames)), parse(eiger(*frames))
    _ = eager.data  # decoded before repr
    assert repr(lazy) == repr(eager)
    names = [name for name, _ in lazy.__repr_args__()]
    assert names.index("data") < names.index("config")


def test_lazy_image_pickles_and_copies():
    array = np.arange(300, dtype="<u2").reshape(15, 20)
    frames = image_frames(hdf5_encode(array), [20, 15], "uint16", "bs16-lz4<")
    image = parse(eiger(*frames))
    for clone in (pickle.loads(pickle.dumps(image)), copy.deepcopy(image), copy.copy(image)):
        np.testing.assert_array_equal(clone.data, array)
        assert clone.config == image.config


def test_lz4_image_is_decoded_on_first_access():
    block = pytest.importorskip("lz4.block")
    array = np.arange(600, dtype="<u2").reshape(20, 30) % 7
    image = parse(
        eiger(
            *image_frames(
                block.compress(array.tobytes(), store_size=False), [30, 20], "uint16", "lz4<"
            )
        )
    )
    assert "data" not in image.__dict__
    np.testing.assert_array_equal(image.data, array)
    assert image.data.flags.writeable


def test_header_wrong_frame_count():
    assert parse_error(eiger(header_frame("all"), b"{}")) == (
        "EIGER_LEGACY header series=3: 2 frames, expected 8 for header_detail 'all' "
        "(9 with an appendix)"
    )


def test_header_unknown_detail():
    message = parse_error(eiger(header_frame("most")))
    assert message.startswith(
        "EIGER_LEGACY frame 0 (dheader-1.0): invalid 'dheader-1.0' message: header_detail: "
    )


def test_header_missing_series():
    assert parse_error(eiger(b'{"htype": "dheader-1.0", "header_detail": "none"}')) == (
        "EIGER_LEGACY frame 0 (dheader-1.0): invalid 'dheader-1.0' message: series is missing"
    )


def test_header_config_not_an_object():
    assert parse_error(eiger(header_frame("basic"), b"[1]")) == (
        "EIGER_LEGACY frame 1 (detector configuration): got JSON list [1]; expected a JSON object"
    )


def test_header_array_descriptor_with_wrong_htype(raw):
    frames = trimmed_header(raw[0])
    frames[4], frames[2] = frames[2], frames[4]
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY frame 2: htype 'dpixelmask-1.0'; expected htype 'dflatfield-1.0'"
    )


def test_header_array_descriptor_with_bad_shape(raw):
    frames = trimmed_header(raw[0])
    frames[6] = b'{"htype": "dcountrate_table-1.0", "shape": [2, -1], "type": "float32"}'
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY header series=6 frame 6 (dcountrate_table-1.0 descriptor): shape [2, -1]; "
        "expected a list of non-negative ints"
    )


def test_header_array_descriptor_with_bad_type(raw):
    frames = trimmed_header(raw[0])
    frames[6] = b'{"htype": "dcountrate_table-1.0", "shape": [2, 1001], "type": "text"}'
    assert parse_error(eiger(*frames)) == (
        "EIGER_LEGACY header series=6 frame 6 (dcountrate_table-1.0 descriptor): type 'text' "
        "is not a numeric numpy dtype name"
    )


def test_end_with_extra_frames():
    assert parse_error(eiger(b'{"htype": "dseries_end-1.0", "series": 1}', b"{}")) == (
        "EIGER_LEGACY series end series=1: 2 frames, expected 1"
    )


def test_end_with_bad_series():
    message = parse_error(eiger(b'{"htype": "dseries_end-1.0", "series": "six"}'))
    assert message.startswith(
        "EIGER_LEGACY frame 0 (dseries_end-1.0): invalid 'dseries_end-1.0' message: series: "
    )


def test_errors_name_the_stream_type():
    assert parse_error(eiger(b"{}", typ="eiger-9m")).startswith("eiger-9m frame 0:")


def test_parse_errors_are_value_errors_with_a_cause():
    with pytest.raises(ValueError) as info:
        parse(eiger(header_frame("most")))
    assert isinstance(info.value.__cause__, ValidationError)


# --- data: the decoded array, which also answers the original's dict ------------------------------


def test_data_answers_the_originals_descriptor_dict():
    array = np.arange(12, dtype="<u4").reshape(3, 4)
    blob = hdf5_encode(array)
    image = parse(eiger(*image_frames(blob, [4, 3], appendix=b"{}")))
    data = image.data
    assert isinstance(data, EigerImageArray) and isinstance(data, np.ndarray)
    assert data["buffer"] == blob and type(data["buffer"]) is bytes
    assert (data["shape"], data["type"], data["encoding"]) == ([4, 3], "uint32", "bs32-lz4<")
    assert (data["htype"], data["size"]) == ("dimage_d-1.0", len(blob))
    assert list(data.keys()) == ["htype", "shape", "type", "encoding", "size", "buffer"]
    assert (
        dict(data)
        == dict(data.items())
        == {
            "htype": "dimage_d-1.0",
            "shape": [4, 3],
            "type": "uint32",
            "encoding": "bs32-lz4<",
            "size": len(blob),
            "buffer": blob,
        }
    )
    assert list(data.values()) == [data[key] for key in data.keys()]
    assert "buffer" in data and "shape" in data and "pixels" not in data
    assert 5 in data and 99 not in data  # numbers: numpy's element test, as for any array
    assert data.get("encoding") == "bs32-lz4<" and data.get("pixels", 0) == 0
    assert data.get("pixels") is None
    with pytest.raises(KeyError, match="'pixels': the EIGER image descriptor has 'htype'"):
        data["pixels"]
    with pytest.raises(TypeError, match="read-only"):
        data["shape"] = [1, 1]
    # the array itself is unchanged: numpy order, len and iteration over rows
    assert (data.shape, data.dtype, len(data)) == ((3, 4), np.dtype("<u4"), 3)
    assert [row.tolist() for row in data] == array.tolist()
    assert image.config == {
        "htype": "dconfig-1.0",
        "start_time": 10,
        "stop_time": 20,
        "real_time": 10,
    }
    assert image.appendix == {}


def test_data_buffer_of_a_zmq_frame_is_bytes():
    array = np.arange(6, dtype="<u4").reshape(2, 3)
    frames: list[object] = image_frames(array.tobytes(), [3, 2], "uint32", "<")
    frames[2] = zmq.Frame(frames[2])
    image = parse(eiger(*frames))
    assert type(image.data["buffer"]) is bytes and image.data["buffer"] == array.tobytes()
    np.testing.assert_array_equal(image.data, array)
    assert image.data.flags.writeable is np.frombuffer(frames[2].buffer, "<u4").flags.writeable


def test_data_views_and_results_carry_no_descriptor():
    array = np.arange(64, dtype="<u4").reshape(8, 8)
    image = parse(eiger(*image_frames(hdf5_encode(array), [8, 8])))
    data = image.data
    for plain in (data[0], data[1:3], data[data > 3], data + 1, data.sum(axis=0), data == 0):
        assert type(plain) is np.ndarray
    assert type(data.sum()) is np.uint64 and int(data.sum()) == int(array.sum())
    assert type(np.asarray(data)) is np.ndarray
    for derived in (data.T, data.reshape(4, 16), data.astype(float), data.view()):
        assert isinstance(derived, EigerImageArray)
        assert list(derived.keys()) == [] and "buffer" not in derived
        assert derived.get("buffer") is None and derived.descriptor is None
        with pytest.raises(KeyError, match="only the parsed image itself"):
            derived["buffer"]
    # in place: the same object, still the image of that frame
    same = data
    same += 1
    assert same is data and image.data is data and data["type"] == "uint32"
    np.testing.assert_array_equal(data, array + 1)


def test_data_copies_and_pickles_keep_the_descriptor():
    array = np.arange(300, dtype="<u2").reshape(15, 20)
    frames = image_frames(hdf5_encode(array), [20, 15], "uint16", "bs16-lz4<")
    data = parse(eiger(*frames)).data
    expected = dict(data)
    for clone in (
        data.copy(),
        copy.copy(data),
        copy.deepcopy(data),
        pickle.loads(pickle.dumps(data)),
    ):
        assert type(clone) is EigerImageArray and clone is not data
        assert dict(clone) == expected
        np.testing.assert_array_equal(clone, array)
        assert clone.flags.writeable
    assert copy.deepcopy(data)["shape"] is not data["shape"]
    for packet in (
        pickle.loads(pickle.dumps(parse(eiger(*frames)))),
        copy.deepcopy(parse(eiger(*frames))),
    ):
        assert dict(packet.data) == expected and packet.config["htype"] == "dconfig-1.0"


def test_data_of_a_lazy_image_is_the_descriptor_array_once_decoded():
    array = np.arange(64, dtype="<u4").reshape(8, 8)
    blob = hdf5_encode(array)
    image = parse(eiger(*image_frames(blob, [8, 8])))
    assert "data" not in image.__dict__
    assert image.data["buffer"] == blob  # reading data decodes it first
    assert type(image.__dict__["data"]) is EigerImageArray


def test_data_of_an_empty_image_has_the_descriptor():
    blob = struct.pack(">QI", 0, 8192)
    image = parse(eiger(*image_frames(blob, [0, 4])))
    assert image.data.shape == (4, 0) and image.data["buffer"] == blob


def test_built_image_keeps_its_data_and_gets_the_config_htype():
    array = np.arange(6, dtype="<u4").reshape(2, 3)
    image = EigerLegacyImage.from_array(array, series=1, frame=0, config={"real_time": 1})
    assert image.data is array
    assert image.config == {"htype": "dconfig-1.0", "real_time": 1}
    assert EigerLegacyImage(frame=0).config == {"htype": "dconfig-1.0"}
    # the original's models took any config; the frame always says dconfig-1.0
    odd = EigerLegacyImage.from_array(
        array, series=1, frame=0, config={"real_time": 1, "htype": "x"}
    )
    assert odd.config == {"real_time": 1, "htype": "x"}
    assert json.loads(odd.to_stream_data().frames[3]) == {"htype": "dconfig-1.0", "real_time": 1}
    parsed = parse(image.to_stream_data())
    assert parsed.config == image.config
    assert dict(parsed.data) == {
        "htype": "dimage_d-1.0",
        "shape": [3, 2],
        "type": "uint32",
        "encoding": "bs32-lz4<",
        "size": len(image.payload_frame()),
        "buffer": image.payload_frame(),
    }

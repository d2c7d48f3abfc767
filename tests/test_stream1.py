"""STINS ("stream1") packets: parsing received frames, building frames, and every malformed case."""

from __future__ import annotations

import copy
import gc
import json
import pickle
import struct
from pathlib import Path

import cbor2
import h5py
import numpy as np
import pytest
import zmq
from pydantic import ValidationError

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.stream1.packets import (
    Stream1Data,
    Stream1End,
    Stream1PacketAdapter,
    Stream1Start,
    encode_bslz4,
    encode_frame,
)
from dranspose.protocols.stream1.parser import parse
from tests.compat.bslz4_reference import (
    decode_bslz4,
    decode_lz4,
    hdf5_decode,
    hdf5_encode,
)

DUMP = Path(__file__).resolve().parent.parent / "data" / "dump_xrd.cbors"
EVENT_TAG = 42877
STREAM_TAG = 42878
# mean(data[:2, 8:]) of images 1..9 of the dump, as the README's tutorial output lists them
README_ROI_MEANS = [9.25, 11.25, 11.75, 4.25, 2.25, 3.0, 4.75, 7.75, 10.75]


def read_dump() -> list[StreamData]:
    """The ``xrd`` stream of every event in the dump, decoded with plain cbor2."""
    streams = []
    with DUMP.open("rb") as fh:
        decoder = cbor2.CBORDecoder(fh)
        while True:
            try:
                item = decoder.decode()
            except cbor2.CBORDecodeEOF:
                break
            assert item.tag == EVENT_TAG
            number, parts = item.value
            assert number == len(streams)
            stream = parts["xrd"]
            assert stream.tag == STREAM_TAG
            typ, frames = stream.value
            streams.append(StreamData(typ=typ, frames=list(frames)))
    return streams


@pytest.fixture(scope="module")
def dump() -> list[StreamData]:
    return read_dump()


def stins(*frames: object, typ: str = "STINS") -> StreamData:
    return StreamData.model_construct(typ=typ, frames=list(frames))


def image_header(**fields: object) -> bytes:
    header = {
        "htype": "image",
        "frame": 0,
        "shape": [10, 10],
        "type": "uint16",
        "compression": "none",
        "msg_number": 1,
    }
    header.update(fields)
    return json.dumps({k: v for k, v in header.items() if v is not ...}).encode()


def hdf5_bslz4_chunk(array: np.ndarray, path: Path) -> bytes:
    """The raw chunk the HDF5 bitshuffle/LZ4 filter writes for ``array``: what Dectris sends."""
    import hdf5plugin  # a dependency of dranspose (its encoder)

    with h5py.File(path, "w") as fh:
        dset = fh.create_dataset(
            "x", data=array, chunks=array.shape, **hdf5plugin.Bitshuffle(cname="lz4")
        )
        mask, chunk = dset.id.read_direct_chunk((0,) * array.ndim)
    assert mask == 0
    return chunk


def random_image(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 5000, size=shape).astype(dtype)


# --- the shipped dump ---------------------------------------------------------------------------


def test_dump_has_eleven_events(dump):
    assert len(dump) == 11
    assert all(stream.typ == "STINS" for stream in dump)


def test_dump_first_event_is_start(dump):
    packet = parse(dump[0])
    assert isinstance(packet, Stream1Start)
    assert packet.filename == "output/xrd.h5"
    assert packet.msg_number == 0


@pytest.mark.parametrize("event", range(1, 10))
def test_dump_images_are_views_of_the_second_frame(dump, event):
    packet = parse(dump[event])
    raw = dump[event].frames[1]
    assert isinstance(packet, Stream1Data)
    assert packet.msg_number == event
    assert packet.frame == event - 1
    assert packet.shape == [10, 10]
    assert packet.type == "uint16"
    assert packet.data.shape == (10, 10)
    assert packet.data.dtype == np.uint16
    np.testing.assert_array_equal(packet.data, np.frombuffer(raw, dtype="<u2").reshape(10, 10))


@pytest.mark.parametrize("event", range(1, 10))
def test_dump_roi_mean_matches_raw_bytes(dump, event):
    packet = parse(dump[event])
    raw = dump[event].frames[1]
    # rows 0..1, columns 8..9 of a row-major 10x10 image are the flat pixels 8, 9, 18, 19;
    # each is a little-endian 16-bit integer
    pixels = [struct.unpack_from("<H", raw, 2 * i)[0] for i in (8, 9, 18, 19)]
    expected = sum(pixels) / len(pixels)
    assert np.mean(packet.data[:2, 8:]) == expected
    assert expected == README_ROI_MEANS[event - 1]


def test_dump_last_event_is_end(dump):
    packet = parse(dump[10])
    assert isinstance(packet, Stream1End)
    assert packet.msg_number == 10


def test_dump_start_str(dump):
    assert str(parse(dump[0])) == "msg_number=0 htype='header' filename='output/xrd.h5'"


# --- str() ------------------------------------------------------------------------------------


def test_str_of_start():
    packet = Stream1Start(msg_number=0, htype="header", filename="")
    assert str(packet) == "msg_number=0 htype='header' filename=''"


def test_str_of_image():
    data = np.arange(100, dtype=np.uint16).reshape(10, 10)
    packet = Stream1Data(
        msg_number=1,
        htype="image",
        frame=0,
        shape=[10, 10],
        type="uint16",
        compression="none",
        data=data,
    )
    assert str(packet) == (
        "msg_number=1 htype='image' frame=0 shape=[10, 10] type='uint16' "
        f"compression='none' data={data!r}"
    )


def test_str_of_parsed_image_lists_data_last(dump):
    packet = parse(dump[1])
    prefix = (
        "msg_number=1 htype='image' frame=0 shape=[10, 10] type='uint16' compression='none' "
        "data=array([[ 1, 18,"
    )
    assert str(packet).startswith(prefix)
    assert str(packet).endswith("dtype=uint16)")


def test_str_of_end():
    assert str(Stream1End(msg_number=10, htype="series_end")) == "msg_number=10 htype='series_end'"


# --- zero copy ----------------------------------------------------------------------------------


def test_uncompressed_bytes_frame_is_not_copied():
    raw = np.arange(100, dtype=np.uint16).tobytes()
    packet = parse(stins(image_header(), raw))
    assert np.shares_memory(packet.data, np.frombuffer(raw, dtype=np.uint8))
    base = packet.data
    while isinstance(base, np.ndarray):
        base = base.base
    assert base is raw


def test_uncompressed_zmq_frame_is_not_copied():
    raw = np.arange(100, dtype=np.uint16).tobytes()
    frame = zmq.Frame(raw, copy=True)
    packet = parse(stins(image_header(), frame))
    assert np.shares_memory(packet.data, np.frombuffer(frame.buffer, dtype=np.uint8))
    # copy=True gave the frame its own buffer, which the array now points into
    assert not np.shares_memory(packet.data, np.frombuffer(raw, dtype=np.uint8))


def test_zmq_frame_outlives_its_stream_data():
    expected = np.arange(100, dtype=np.uint16).reshape(10, 10)
    stream = stins(zmq.Frame(image_header()), zmq.Frame(expected.tobytes(), copy=True))
    packet = parse(stream)
    del stream
    gc.collect()
    np.testing.assert_array_equal(packet.data, expected)


def test_uncompressed_image_without_compression_field():
    raw = np.arange(100, dtype=np.uint16).tobytes()
    packet = parse(stins(image_header(compression=...), raw))
    assert packet.compression is None
    np.testing.assert_array_equal(packet.data.ravel(), np.arange(100))


# --- bslz4 ------------------------------------------------------------------------------------

BSLZ4_CASES = [
    ((37, 53), "uint16"),  # one partial block and a 1-element uncompressed tail
    ((37, 53), "uint32"),
    ((64, 129), "uint16"),  # two full blocks of 4096 and a partial one
    ((3, 1000), "uint32"),  # one full block of 2048 and a partial one
    ((1, 7), "uint16"),  # fewer than 8 elements: only the uncompressed tail
    ((37, 53), "float32"),
    ((11, 13), "int8"),
]


@pytest.mark.parametrize(("shape", "dtype"), BSLZ4_CASES)
def test_bslz4_decodes_hdf5_chunk(tmp_path, shape, dtype):
    expected = random_image(shape, dtype)
    chunk = hdf5_bslz4_chunk(expected, tmp_path / "chunk.h5")
    header = image_header(shape=list(shape), type=dtype, compression="bslz4")
    packet = parse(stins(header, chunk))
    assert packet.data.dtype == np.dtype(dtype)
    assert packet.data.shape == shape
    np.testing.assert_array_equal(packet.data, expected)


@pytest.mark.parametrize(("shape", "dtype"), BSLZ4_CASES)
def test_bslz4_encoder_writes_the_hdf5_chunk_layout(tmp_path, shape, dtype):
    array = random_image(shape, dtype)
    assert encode_bslz4(array) == hdf5_bslz4_chunk(array, tmp_path / "chunk.h5")


def test_bslz4_decodes_zmq_frame(tmp_path):
    expected = random_image((37, 53), "uint32")
    chunk = hdf5_bslz4_chunk(expected, tmp_path / "chunk.h5")
    header = image_header(shape=[37, 53], type="uint32", compression="bslz4")
    packet = parse(stins(zmq.Frame(header), zmq.Frame(chunk)))
    np.testing.assert_array_equal(packet.data, expected)


@pytest.mark.parametrize(("shape", "dtype"), BSLZ4_CASES + [((0, 4), "uint16"), ((), "uint32")])
def test_bslz4_round_trip(shape, dtype):
    expected = random_image(shape, dtype, seed=3)
    packet = Stream1Data.from_array(expected, msg_number=4, frame=3, compression="bslz4")
    parsed = parse(packet.to_stream_data())
    assert parsed.compression == "bslz4"
    assert parsed.data.shape == expected.shape
    assert parsed.data.dtype == expected.dtype
    np.testing.assert_array_equal(parsed.data, expected)


def test_bslz4_header_counts_uncompressed_bytes_and_block_bytes():
    frame = encode_bslz4(np.zeros((37, 53), dtype=np.uint32))
    assert struct.unpack(">QI", frame[:12]) == (37 * 53 * 4, 2048 * 4)


def test_bslz4_header_block_size_zero_means_the_default():
    expected = random_image((64, 129), "uint16", seed=8)
    frame = bytearray(encode_bslz4(expected))
    assert struct.unpack_from(">I", frame, 8) == (4096 * 2,)
    frame[8:12] = bytes(4)  # the HDF5 bitshuffle filter reads 0 as its default block size
    packet = parse(stins(image_header(shape=[64, 129], compression="bslz4"), bytes(frame)))
    np.testing.assert_array_equal(packet.data, expected)


# --- the real detector blocks of the EIGER capture, sent as STINS images ------------------------

EIGER_CAPTURE = Path(__file__).parent / "data" / "eiger-small.cbors"


def eiger_capture_frames() -> list[tuple[bytes, int]]:
    """The bslz4 data frames of the capture's three images, cut to their whole blocks (the
    capture keeps only 20000 bytes of each) with the header's byte count set to match."""
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
            out.append((struct.pack(">QI", blocks * 8192, 8192) + blob[12:pos], blocks))


@pytest.mark.parametrize("index", [0, 1, 2])
def test_detector_blocks_decode_as_the_reference_decoders_do(index):
    frame, blocks = eiger_capture_frames()[index]
    assert blocks == 123
    header = image_header(shape=[blocks, 2048], type="uint32", compression="bslz4")
    data = parse(stins(header, frame)).data
    by_hdf5 = hdf5_decode(frame, "bslz4", (blocks, 2048), "<u4")
    by_numpy = decode_bslz4(frame, np.dtype("<u4")).reshape(blocks, 2048)
    np.testing.assert_array_equal(data, by_hdf5)
    np.testing.assert_array_equal(data, by_numpy)
    # real detector data: module gaps (0xFFFFFFFF) and a few counts
    assert (data == 0xFFFFFFFF).any() and (data < 10).sum() > 100_000


# --- bszstd and lz4 ---------------------------------------------------------------------------

OTHER_CASES = [
    ((37, 53), "uint16"),
    ((64, 129), "uint16"),
    ((3, 1000), "uint32"),
    ((1, 7), "uint16"),
    ((11, 13), "int8"),
    ((20, 30), "float64"),
]


@pytest.mark.parametrize("compression", ["bszstd", "lz4"])
@pytest.mark.parametrize(("shape", "dtype"), OTHER_CASES)
def test_other_compressions_decode_hdf5_chunks(compression, shape, dtype):
    expected = random_image(shape, dtype, seed=11)
    chunk = hdf5_encode(expected, compression)
    packet = parse(
        stins(image_header(shape=list(shape), type=dtype, compression=compression), chunk)
    )
    assert packet.data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(packet.data, expected)


@pytest.mark.parametrize("compression", ["bslz4", "bszstd", "lz4"])
@pytest.mark.parametrize(("shape", "dtype"), OTHER_CASES + [((0, 4), "uint16"), ((), "uint32")])
def test_compressed_round_trip(compression, shape, dtype):
    expected = random_image(shape, dtype, seed=12)
    packet = Stream1Data.from_array(expected, msg_number=4, frame=3, compression=compression)
    stream = packet.to_stream_data()
    assert json.loads(stream.frames[0])["compression"] == compression
    parsed = parse(stream)
    assert parsed.data.shape == expected.shape
    np.testing.assert_array_equal(parsed.data, expected)
    if expected.size:
        by_hdf5 = hdf5_decode(stream.frames[1], compression, shape, dtype)
        np.testing.assert_array_equal(by_hdf5.reshape(expected.shape), expected)


def test_lz4_frames_with_small_blocks_and_stored_blocks():
    # noise does not compress: the HDF5 LZ4 layout then stores a block as it is
    expected = np.random.default_rng(0).integers(0, 2**32, size=(50, 40), dtype=np.uint32)
    frame = encode_frame(expected, "lz4", block_size=256)
    assert struct.unpack_from(">QI", frame) == (50 * 40 * 4, 1024)
    lengths, pos = [], 12
    while pos < len(frame):
        (length,) = struct.unpack_from(">I", frame, pos)
        lengths.append(length)
        pos += 4 + length
    assert len(lengths) == 8 and 1024 in lengths
    np.testing.assert_array_equal(decode_lz4(frame, np.dtype("uint32")).reshape(50, 40), expected)
    packet = parse(stins(image_header(shape=[50, 40], type="uint32", compression="lz4"), frame))
    np.testing.assert_array_equal(packet.data, expected)


def test_error_lz4_block_size_zero():
    frame = struct.pack(">QI", 200, 0) + struct.pack(">I", 3) + b"abc"
    message = parse_error(stins(image_header(compression="lz4"), frame))
    assert message.endswith(
        "lz4 header gives block size 0 for 200 bytes; expected the size in bytes of the blocks"
    )


def test_error_lz4_truncated():
    frame = encode_frame(random_image((37, 53), "uint16"), "lz4", block_size=512)
    message = parse_error(stins(image_header(shape=[37, 53], compression="lz4"), frame[:-3]))
    assert "lz4 frame 1 (image data) is truncated or corrupt: block 3 of 4 declares" in message


def test_error_bszstd_trailing_bytes():
    frame = encode_frame(random_image((37, 53), "uint16"), "bszstd")
    header = image_header(shape=[37, 53], compression="bszstd")
    message = parse_error(stins(header, frame + b"\0"))
    assert f"bszstd frame 1 (image data) has {len(frame) + 1} bytes" in message


def test_error_bszstd_corrupt_block():
    frame = bytearray(encode_frame(random_image((37, 53), "uint16"), "bszstd"))
    frame[16:20] = b"\0\0\0\0"  # the Zstandard magic number of the first block
    message = data_error(stins(image_header(shape=[37, 53], compression="bszstd"), bytes(frame)))
    assert "bszstd frame 1 (image data) is corrupt: block 0 of 1" in message


def test_error_block_size_beyond_int32():
    header = image_header(shape=[10, 10], type="uint32", compression="bslz4")
    frame = struct.pack(">QI", 400, 2**31) + bytes(100)
    message = parse_error(stins(header, frame))
    assert "bslz4 block size 2147483648 bytes exceeds the limit of 2147483647 bytes" in message


# --- decoding on first access -------------------------------------------------------------------


def bslz4_packet(seed: int = 0, frame_type=bytes) -> tuple[Stream1Data, np.ndarray, StreamData]:
    expected = random_image((37, 53), "uint32", seed=seed)
    header = image_header(shape=[37, 53], type="uint32", compression="bslz4")
    stream = stins(header, frame_type(encode_bslz4(expected)))
    return parse(stream), expected, stream


def test_parse_does_not_decode():
    packet, expected, _ = bslz4_packet()
    assert "data" not in packet.__dict__
    data = packet.data
    assert packet.__dict__["data"] is data  # kept: later reads are plain attribute reads
    assert packet.data is data
    np.testing.assert_array_equal(data, expected)


def test_decoded_image_is_writable_and_its_own():
    packet, expected, stream = bslz4_packet()
    assert packet.data.flags.writeable and packet.data.flags.c_contiguous
    packet.data[0, 0] = 7
    assert packet.data[0, 0] == 7
    assert parse(stream).data[0, 0] == expected[0, 0]


def test_lazy_image_from_a_zmq_frame_outlives_its_stream_data():
    packet, expected, stream = bslz4_packet(seed=2, frame_type=zmq.Frame)
    del stream
    gc.collect()
    np.testing.assert_array_equal(packet.data, expected)


def test_lazy_image_repr_and_str_are_those_of_a_decoded_one():
    packet, expected, stream = bslz4_packet(seed=3)
    eager = Stream1Data.from_array(expected, msg_number=1, frame=0, compression="bslz4")
    text = str(packet)
    assert text == str(eager)
    assert text.endswith(f"data={expected!r}")
    assert repr(parse(stream)) == repr(eager)


def test_repr_of_an_undecodable_image_names_the_error():
    frame = bytearray(encode_bslz4(random_image((37, 53), "uint16", seed=42)))
    frame[16] = 0
    packet = parse(stins(image_header(shape=[37, 53], compression="bslz4"), bytes(frame)))
    assert "data=<not decodable: STINS image msg_number=1 frame=0: bslz4 frame 1" in repr(packet)


def test_lazy_image_model_dump_leaves_out_data_without_decoding():
    packet, _, _ = bslz4_packet()
    dumped = packet.model_dump()
    assert dumped == {
        "msg_number": 1,
        "htype": "image",
        "frame": 0,
        "shape": [37, 53],
        "type": "uint32",
        "compression": "bslz4",
    }
    assert json.loads(packet.model_dump_json()) == dumped
    assert "data" not in packet.__dict__


def test_lazy_image_pickles_with_its_pixels():
    packet, expected, _ = bslz4_packet(seed=4)
    clone = pickle.loads(pickle.dumps(packet))
    assert "data" in clone.__dict__
    np.testing.assert_array_equal(clone.data, expected)
    assert clone.model_dump() == packet.model_dump()


def test_lazy_image_copies():
    packet, expected, _ = bslz4_packet(seed=5)
    for clone in (copy.copy(packet), copy.deepcopy(packet), packet.model_copy()):
        np.testing.assert_array_equal(clone.data, expected)
    assert "data" not in packet.__dict__  # each copy decoded for itself


def test_assigned_data_replaces_the_pending_image():
    packet, _, _ = bslz4_packet()
    packet.data = np.ones((37, 53), np.uint32)
    assert packet.data.sum() == 37 * 53
    assert pickle.loads(pickle.dumps(packet)).data.sum() == 37 * 53


def test_raw_frame_is_untouched_by_parsing():
    packet, _, stream = bslz4_packet(seed=6)
    raw = stream.frames[1]
    assert isinstance(raw, bytes) and struct.unpack_from(">QI", raw) == (37 * 53 * 4, 8192)
    assert "data" not in packet.__dict__


# --- to_stream_data round trips -----------------------------------------------------------------


def test_start_round_trip():
    packet = Stream1Start(msg_number=0, htype="header", filename="scan/1.h5", beamline="nanomax")
    stream = packet.to_stream_data()
    assert stream.typ == "STINS"
    assert len(stream.frames) == 1
    parsed = parse(stream)
    assert isinstance(parsed, Stream1Start)
    assert parsed.model_dump() == {
        "msg_number": 0,
        "htype": "header",
        "filename": "scan/1.h5",
        "beamline": "nanomax",
    }


def test_end_round_trip():
    stream = Stream1End(msg_number=12, htype="series_end").to_stream_data()
    assert len(stream.frames) == 1
    parsed = parse(stream)
    assert isinstance(parsed, Stream1End)
    assert parsed.model_dump() == {"msg_number": 12, "htype": "series_end"}


def test_image_round_trip_uncompressed():
    expected = random_image((12, 7), "float32")
    packet = Stream1Data.from_array(expected, msg_number=3, frame=2, exposure=0.1)
    stream = packet.to_stream_data()
    assert len(stream.frames) == 2
    assert stream.frames[1] == expected.tobytes()
    header = json.loads(stream.frames[0])
    assert "data" not in header
    assert header == {
        "msg_number": 3,
        "htype": "image",
        "frame": 2,
        "shape": [12, 7],
        "type": "float32",
        "compression": "none",
        "exposure": 0.1,
    }
    parsed = parse(stream)
    assert parsed.model_dump() == packet.model_dump()
    np.testing.assert_array_equal(parsed.data, expected)


def test_image_json_dump_leaves_out_data():
    packet = Stream1Data.from_array(np.zeros((2, 2), np.uint16), msg_number=1, frame=0)
    assert "data" not in packet.model_dump()
    assert "data" not in json.loads(packet.model_dump_json())


def test_to_stream_data_keeps_the_stream_type():
    stream = Stream1End(msg_number=1, htype="series_end").to_stream_data(typ="eiger")
    assert stream.typ == "eiger"


def test_to_stream_data_rejects_data_that_does_not_match_the_header():
    packet = Stream1Data(
        msg_number=1,
        htype="image",
        frame=0,
        shape=[3, 3],
        type="uint16",
        data=np.zeros((2, 2), np.uint16),
    )
    with pytest.raises(ValueError, match=r"shape is \[3, 3\] but data has shape \[2, 2\]"):
        packet.to_stream_data()


def test_adapter_validates_any_packet():
    packet = Stream1PacketAdapter.validate_python(
        {"htype": "header", "filename": "", "msg_number": 0}
    )
    assert isinstance(packet, Stream1Start)


def test_other_stream_types_are_accepted():
    packet = parse(stins(b'{"htype": "series_end", "msg_number": 5}', typ="stins-v1"))
    assert isinstance(packet, Stream1End)


def test_unknown_header_fields_are_kept():
    packet = parse(stins(b'{"htype": "header", "filename": "a", "msg_number": 0, "x": [1]}'))
    assert packet.model_extra == {"x": [1]}


# --- malformed input ----------------------------------------------------------------------------


def parse_error(stream: StreamData) -> str:
    with pytest.raises(ParseError) as info:
        parse(stream)
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_error_no_frames():
    message = parse_error(stins())
    assert message.startswith("STINS stream: no frames")


def test_error_header_not_json():
    message = parse_error(stins(b"{htype: image"))
    assert "STINS frame 0 (header): not valid JSON" in message


def test_error_header_not_json_chains_the_decoder_error():
    with pytest.raises(ParseError) as info:
        parse(stins(b"\xff\xfe"))
    assert isinstance(info.value.__cause__, ValueError)


def test_error_header_not_an_object():
    message = parse_error(stins(b"[1, 2]"))
    assert "got a JSON array, expected a JSON object" in message


def test_error_header_not_bytes():
    message = parse_error(stins(12345))
    assert "frame 0 (header): got a int" in message


def test_error_unknown_htype():
    message = parse_error(stins(b'{"htype": "dimage", "msg_number": 1}'))
    assert "htype 'dimage'" in message
    assert "'header', 'image', 'series_end'" in message


def test_error_missing_htype():
    message = parse_error(stins(b'{"msg_number": 1}'))
    assert "no 'htype' field" in message


def test_error_missing_field():
    message = parse_error(stins(b'{"htype": "header", "msg_number": 0}'))
    assert "invalid 'header' header: filename is missing" in message


def test_error_missing_field_chains_the_validation_error():
    with pytest.raises(ParseError) as info:
        parse(stins(b'{"htype": "header", "msg_number": 0}'))
    assert isinstance(info.value.__cause__, ValidationError)


def test_error_invalid_field():
    message = parse_error(stins(image_header(shape="10x10"), b""))
    assert "invalid 'image' header: shape: Input should be a valid list, got '10x10'" in message


def test_error_invalid_shape_element():
    message = parse_error(stins(image_header(shape=[10, "ten"]), b""))
    assert "shape[1]: Input should be a valid integer" in message
    assert "'ten'" in message


def test_error_negative_shape():
    message = parse_error(stins(image_header(shape=[10, -10]), b""))
    assert "shape [10, -10] has a negative dimension" in message


def test_error_image_without_data_frame():
    message = parse_error(stins(image_header()))
    assert message == (
        "STINS image msg_number=1 frame=0: frame 1 (image data) is missing; "
        "expected 200 bytes for shape [10, 10] of uint16 (2 bytes each)"
    )


def test_error_image_size_does_not_match_shape():
    message = parse_error(stins(image_header(), bytes(198)))
    assert "frame 1 (image data) has 198 bytes, expected 200 bytes" in message
    assert "shape [10, 10] of uint16" in message


def test_error_image_size_does_not_match_dtype():
    message = parse_error(stins(image_header(type="uint32"), bytes(200)))
    assert "has 200 bytes, expected 400 bytes for shape [10, 10] of uint32" in message


@pytest.mark.parametrize("dtype", ["uint17", "object", "U4", ""])
def test_error_unknown_dtype(dtype):
    message = parse_error(stins(image_header(type=dtype), bytes(200)))
    assert f"header type {dtype!r} is not a numeric numpy dtype" in message


def test_error_unknown_compression():
    message = parse_error(stins(image_header(compression="zstd"), bytes(200)))
    assert "unknown compression 'zstd'; expected 'none', 'bslz4', 'bszstd' or 'lz4'" in message


def test_error_bslz4_shorter_than_its_header():
    message = parse_error(stins(image_header(compression="bslz4"), bytes(5)))
    assert "has 5 bytes, shorter than the 12-byte bslz4 header" in message


def test_error_bslz4_announces_wrong_size():
    frame = encode_bslz4(np.zeros((10, 11), np.uint16))
    message = parse_error(stins(image_header(compression="bslz4"), frame))
    assert "bslz4 header announces 220 uncompressed bytes, expected 200 bytes" in message


def test_error_bslz4_truncated():
    frame = encode_bslz4(random_image((37, 53), "uint16"))
    header = image_header(shape=[37, 53], compression="bslz4")
    message = parse_error(stins(header, frame[:-10]))
    assert "truncated" in message
    assert "block 0 of 1" in message


def test_error_bslz4_trailing_bytes():
    frame = encode_bslz4(random_image((37, 53), "uint16"))
    header = image_header(shape=[37, 53], compression="bslz4")
    message = parse_error(stins(header, frame + b"\0\0\0"))
    assert f"has {len(frame) + 3} bytes" in message
    assert f"take {len(frame)}" in message


def test_error_bslz4_block_size_not_whole_items():
    frame = bytearray(encode_bslz4(np.zeros((10, 10), np.uint32)))
    frame[8:12] = struct.pack(">I", 8190)
    header = image_header(type="uint32", compression="bslz4")
    message = parse_error(stins(header, bytes(frame)))
    assert "block size 8190 bytes is not a multiple of the 4-byte uint32 item size" in message


def test_error_bslz4_claims_more_than_lz4_can_expand():
    header = image_header(shape=[4096, 4096], type="uint32", compression="bslz4")
    frame = struct.pack(">QI", 4096 * 4096 * 4, 8192) + bytes(100)
    message = parse_error(stins(header, frame))
    assert "100 compressed bytes cannot hold 67108864 uncompressed bytes" in message


def data_error(stream: StreamData) -> str:
    """Parsing succeeds (the frame is structurally sound); reading ``data`` raises."""
    packet = parse(stream)
    assert "data" not in packet.__dict__
    with pytest.raises(ParseError) as info:
        _ = packet.data
    return str(info.value)


def test_error_bslz4_corrupt_block():
    frame = bytearray(encode_bslz4(random_image((37, 53), "uint16", seed=42)))
    frame[16] = 0  # the first LZ4 token of the first block
    header = image_header(shape=[37, 53], compression="bslz4")
    (length,) = struct.unpack_from(">I", frame, 12)
    message = data_error(stins(header, bytes(frame)))
    assert message == (
        f"STINS image msg_number=1 frame=0: bslz4 frame 1 (image data) is corrupt: block 0 of 1 "
        f"({length} compressed bytes at byte 12) does not decode to 3920 bytes; "
        f"dectris-compression failed (error decompressing stream) decoding 3922 bytes for "
        f"shape [37, 53] of uint16 (2 bytes each) in blocks of 4096 elements"
    )


def test_error_bslz4_corrupt_block_is_named_among_several():
    frame = bytearray(encode_bslz4(random_image((64, 129), "uint16", seed=5)))
    # walk to the third block and break its first LZ4 token
    pos = 12
    for _ in range(2):
        (length,) = struct.unpack_from(">I", frame, pos)
        pos += 4 + length
    (length,) = struct.unpack_from(">I", frame, pos)
    frame[pos + 4] = 0xF0  # 15+ literals announced where few are
    frame[pos + 5] = 0xFF
    header = image_header(shape=[64, 129], compression="bslz4")
    message = data_error(stins(header, bytes(frame)))
    assert f"block 2 of 3 ({length} compressed bytes at byte {pos}) does not decode to" in message


def test_decode_error_is_raised_again_on_the_next_read():
    frame = bytearray(encode_bslz4(random_image((37, 53), "uint16", seed=42)))
    frame[16] = 0
    packet = parse(stins(image_header(shape=[37, 53], compression="bslz4"), bytes(frame)))
    messages = []
    for _ in range(2):
        with pytest.raises(ParseError) as info:
            _ = packet.data
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "is corrupt" in messages[0]


def test_error_names_the_stream_type():
    message = parse_error(stins(image_header(), typ="eiger-stins"))
    assert message.startswith("eiger-stins image msg_number=1 frame=0:")

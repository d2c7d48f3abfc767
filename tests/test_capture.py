"""Capture files: reading ingester dumps and raw captures, writing them, and reporting damage."""

import gzip
import io
import json
import pickle
import shutil
import zlib
from pathlib import Path

import cbor2
import numpy as np
import pytest
import zmq

from dranspose.core.event import InternalWorkerMessage, StreamData
from dranspose.io.capture import (
    MESSAGE_TAG,
    STREAM_TAG,
    CaptureError,
    CaptureWriter,
    RawCaptureWriter,
    read_capture,
    read_raw_capture,
    write_capture,
)

REPO = Path(__file__).parent.parent
DUMP_XRD = REPO / "data" / "dump_xrd.cbors"
XSPRESS3_RAW = Path(__file__).parent / "data" / "xspress3-dump.cbors"


def independent_items(path):
    """Decode every CBOR item with plain cbor2.load; returns (start offset, item) pairs."""
    buf = io.BytesIO(Path(path).read_bytes())
    end = len(buf.getvalue())
    items = []
    while buf.tell() < end:
        start = buf.tell()
        items.append((start, cbor2.load(buf)))
    return items


def message(event_number, created_at=None, **streams):
    return InternalWorkerMessage(
        event_number=event_number,
        streams={
            name: StreamData(typ=typ, frames=frames) for name, (typ, frames) in streams.items()
        },
        created_at=created_at,
    )


def as_plain(msg):
    """A message as comparable plain values, whatever frame objects it was built with."""
    return (
        msg.event_number,
        msg.created_at,
        {name: (data.typ, data.frame_bytes()) for name, data in msg.streams.items()},
    )


# --- the example dump ---------------------------------------------------------------------------


def test_dump_xrd_has_eleven_events_numbered_in_order():
    messages = list(read_capture(DUMP_XRD))
    assert [m.event_number for m in messages] == list(range(11))


def test_dump_xrd_every_event_has_one_stins_stream_named_xrd():
    for msg in read_capture(DUMP_XRD):
        assert list(msg.streams) == ["xrd"]
        assert msg.streams["xrd"].typ == "STINS"


def test_dump_xrd_first_event_is_the_series_header():
    first = next(read_capture(DUMP_XRD))
    header = json.loads(first.streams["xrd"].frames[0])
    assert header["htype"] == "header"
    assert header["filename"] == "output/xrd.h5"


def test_dump_xrd_images_carry_a_10x10_uint16_frame():
    messages = list(read_capture(DUMP_XRD))
    for number, msg in enumerate(messages[1:10], start=1):
        frames = msg.streams["xrd"].frames
        assert len(frames) == 2
        meta = json.loads(frames[0])
        assert meta["htype"] == "image"
        assert meta["frame"] == number - 1
        assert len(frames[1]) == 200
        image = np.frombuffer(frames[1], dtype=meta["type"]).reshape(meta["shape"])
        assert image.shape == (10, 10)


def test_dump_xrd_last_event_ends_the_series():
    last = list(read_capture(DUMP_XRD))[-1]
    assert json.loads(last.streams["xrd"].frames[0])["htype"] == "series_end"


def test_dump_xrd_has_no_created_at():
    assert {m.created_at for m in read_capture(DUMP_XRD)} == {None}


def test_dump_xrd_matches_an_independent_cbor2_decode():
    expected = []
    for _, item in independent_items(DUMP_XRD):
        assert item.tag == MESSAGE_TAG
        number, streams = item.value[0], item.value[1]
        expected.append(
            (number, None, {n: (t.value[0], list(t.value[1])) for n, t in streams.items()})
        )
    assert [as_plain(m) for m in read_capture(DUMP_XRD)] == expected


def test_frames_come_back_as_a_list_of_bytes():
    first = next(read_capture(DUMP_XRD))
    data = first.streams["xrd"]
    assert type(data.frames) is list
    assert all(type(f) is bytes for f in data.frames)
    assert type(first.streams) is dict
    assert repr(data).startswith('StreamData(typ=\'STINS\', frames=[b\'{"htype": "header"')
    assert repr(data).endswith("], length=1)")


# --- writing and reading back -------------------------------------------------------------------


def mixed_messages():
    return [
        message(0, created_at=1700000000.25, det=("STINS", [b'{"htype": "header"}'])),
        message(
            1,
            created_at=None,
            det=("STINS", [b'{"htype": "image"}', b"\x00\x01" * 100]),
            pcap=("PCAP", [b"a", b"", b"c"]),
        ),
        message(2, created_at=3.5, det=("STINS", [zmq.Frame(b"from zmq"), b"plain"])),
        message(3),
    ]


@pytest.mark.parametrize("name", ["capture.cbors", "capture.cbor", "capture.cbors.gz"])
def test_written_messages_read_back_unchanged(tmp_path, name):
    path = tmp_path / name
    written = mixed_messages()
    with CaptureWriter(path) as writer:
        for msg in written:
            writer.write(msg)
    assert [as_plain(m) for m in read_capture(path)] == [as_plain(m) for m in written]


def test_zmq_frames_and_memoryviews_are_written_as_their_bytes(tmp_path):
    path = tmp_path / "c.cbors"
    # StreamData validation refuses memoryviews, but hot paths build messages unvalidated.
    frames = [zmq.Frame(b"zmq-bytes"), memoryview(b"view-bytes"), bytearray(b"ba")]
    msg = InternalWorkerMessage.model_construct(
        event_number=7, streams={"s": StreamData.model_construct(typ="X", frames=frames)}
    )
    write_capture(path, [msg])
    (read,) = read_capture(path)
    assert read.streams["s"].frames == [b"zmq-bytes", b"view-bytes", b"ba"]


def test_gz_capture_is_really_compressed(tmp_path):
    path = tmp_path / "c.cbors.gz"
    write_capture(path, mixed_messages())
    with gzip.open(path, "rb") as fh:
        assert [item.value[0] for item in iter_cbor(fh)] == [0, 1, 2, 3]


def iter_cbor(fh):
    while fh.peek(1):
        yield cbor2.load(fh)


def test_created_at_is_only_stored_when_set(tmp_path):
    path = tmp_path / "c.cbors"
    write_capture(path, [message(0, created_at=2.0), message(1)])
    lengths = [len(item.value) for _, item in independent_items(path)]
    assert lengths == [3, 2]


def test_explicit_null_created_at_reads_as_none(tmp_path):
    path = tmp_path / "c.cbors"
    stream = cbor2.CBORTag(STREAM_TAG, ["T", [b"f"]])
    path.write_bytes(cbor2.dumps(cbor2.CBORTag(MESSAGE_TAG, [5, {"s": stream}, None])))
    (msg,) = read_capture(path)
    assert msg.event_number == 5
    assert msg.created_at is None


def test_integer_created_at_reads_as_float(tmp_path):
    path = tmp_path / "c.cbors"
    stream = cbor2.CBORTag(STREAM_TAG, ["T", [b"f"]])
    path.write_bytes(cbor2.dumps(cbor2.CBORTag(MESSAGE_TAG, [5, {"s": stream}, 17])))
    (msg,) = read_capture(path)
    assert msg.created_at == 17.0
    assert type(msg.created_at) is float


def test_write_capture_returns_the_number_written(tmp_path):
    assert write_capture(tmp_path / "c.cbors", mixed_messages()) == 4


def test_writer_refuses_a_pkls_name(tmp_path):
    with pytest.raises(ValueError, match="CBOR"):
        CaptureWriter(tmp_path / "c.pkls")


def test_writer_rejects_frames_that_are_not_bytes(tmp_path):
    msg = InternalWorkerMessage.model_construct(
        event_number=0, streams={"s": StreamData.model_construct(typ="T", frames=["text"])}
    )
    with CaptureWriter(tmp_path / "c.cbors") as writer:
        with pytest.raises(TypeError, match="str"):
            writer.write(msg)


def test_writing_after_close_fails(tmp_path):
    writer = CaptureWriter(tmp_path / "c.cbors")
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(message(0))


def test_files_written_so_far_are_readable_after_flush(tmp_path):
    path = tmp_path / "c.cbors"
    with CaptureWriter(path) as writer:
        writer.write(message(0, s=("T", [b"a"])))
        writer.flush()
        assert [m.event_number for m in read_capture(path)] == [0]


# --- pickled captures ---------------------------------------------------------------------------


def write_pickles(path, objects, opener=open):
    with opener(path, "wb") as fh:
        for obj in objects:
            pickle.dump(obj, fh)


def with_bytes_frames(msg):
    """The same message with every frame as bytes (zmq.Frame objects cannot be pickled)."""
    streams = {name: (data.typ, data.frame_bytes()) for name, data in msg.streams.items()}
    return message(msg.event_number, msg.created_at, **streams)


@pytest.mark.parametrize(
    "name, opener", [("c.pkls", open), ("c.pkls.gz", gzip.open)], ids=["pkls", "pkls.gz"]
)
def test_pickled_messages_read_back_unchanged(tmp_path, name, opener):
    path = tmp_path / name
    written = [with_bytes_frames(m) for m in mixed_messages()]
    write_pickles(path, written, opener)
    assert [as_plain(m) for m in read_capture(path)] == [as_plain(m) for m in written]


def test_pickle_that_is_not_a_message_names_its_index_and_offset(tmp_path):
    path = tmp_path / "c.pkls"
    first = pickle.dumps(message(0))
    write_pickles(path, [message(0), {"not": "a message"}])
    reader = read_capture(path)
    assert next(reader).event_number == 0
    with pytest.raises(CaptureError, match="not an InternalWorkerMessage") as info:
        next(reader)
    assert (info.value.index, info.value.offset) == (1, len(first))


def test_truncated_pickle_is_a_capture_error(tmp_path):
    path = tmp_path / "c.pkls"
    first, second = pickle.dumps(message(0)), pickle.dumps(message(1, s=("T", [b"x" * 50])))
    path.write_bytes(first + second[: len(second) // 2])
    reader = read_capture(path)
    assert next(reader).event_number == 0
    with pytest.raises(CaptureError, match="truncated") as info:
        next(reader)
    assert (info.value.index, info.value.offset) == (1, len(first))


# --- damage -------------------------------------------------------------------------------------


def test_truncated_dump_yields_the_intact_items_then_names_the_cut_item(tmp_path):
    items = independent_items(DUMP_XRD)
    start_4, start_5 = items[4][0], items[5][0]
    path = tmp_path / "cut.cbors"
    path.write_bytes(DUMP_XRD.read_bytes()[: (start_4 + start_5) // 2])

    got = []
    with pytest.raises(CaptureError) as info:
        for msg in read_capture(path):
            got.append(msg.event_number)
    assert got == [0, 1, 2, 3]
    assert info.value.index == 4
    assert info.value.offset == start_4
    assert "cut.cbors" in str(info.value)
    assert f"item 4 at byte {start_4} is truncated" in str(info.value)


def test_capture_error_is_a_value_error_with_the_decoder_error_as_cause(tmp_path):
    path = tmp_path / "cut.cbors"
    path.write_bytes(DUMP_XRD.read_bytes()[:50])
    with pytest.raises(ValueError) as info:
        list(read_capture(path))
    assert isinstance(info.value, CaptureError)
    assert isinstance(info.value.__cause__, cbor2.CBORDecodeError)


def test_garbage_bytes_are_a_capture_error_at_item_zero(tmp_path):
    path = tmp_path / "garbage.cbors"
    path.write_bytes(b"\xff\xff\xff\xff")
    with pytest.raises(CaptureError, match=r"garbage\.cbors: item 0 at byte 0 ") as info:
        list(read_capture(path))
    assert (info.value.index, info.value.offset) == (0, 0)


def test_garbage_after_intact_items_is_reported_at_its_own_offset(tmp_path):
    path = tmp_path / "tail.cbors"
    good = DUMP_XRD.read_bytes()
    path.write_bytes(good + b"\x1f\x00")
    got = []
    with pytest.raises(CaptureError, match="not valid CBOR") as info:
        for msg in read_capture(path):
            got.append(msg.event_number)
    assert got == list(range(11))
    assert (info.value.index, info.value.offset) == (11, len(good))


def test_item_that_is_not_tagged_says_what_was_expected(tmp_path):
    path = tmp_path / "x.cbors"
    path.write_bytes(cbor2.dumps([1, 2, 3]))
    with pytest.raises(CaptureError) as info:
        list(read_capture(path))
    assert "is not an ingester dump item (expected CBOR tag 42877, got list)" in str(info.value)


def test_unknown_tag_is_named_in_the_error(tmp_path):
    path = tmp_path / "x.cbors"
    path.write_bytes(cbor2.dumps(cbor2.CBORTag(40000, [0, {}])))
    with pytest.raises(CaptureError, match="got CBOR tag 40000"):
        list(read_capture(path))


def stream(typ="T", frames=(b"f",)):
    return cbor2.CBORTag(STREAM_TAG, [typ, list(frames)])


@pytest.mark.parametrize(
    "fields, fragment",
    [
        (["0", {"s": stream()}], "event_number must be an int, got str"),
        ([True, {"s": stream()}], "event_number must be an int, got bool"),
        ([0], "must wrap [event_number, streams, created_at?], got a list of 1"),
        ([0, [stream()]], "streams must be a map, got list"),
        ([0, {1: stream()}], "stream names must be strings, got int"),
        ([0, {"s": 5}], "stream 's': expected CBOR tag 42878 wrapping [typ, frames], got int"),
        ([0, {"s": ["T"]}], "stream 's': expected CBOR tag 42878 wrapping [typ, frames], got list"),
        (
            [0, {"s": cbor2.CBORTag(40000, ["T", []])}],
            "stream 's': expected CBOR tag 42878, got CBOR tag 40000",
        ),
        ([0, {"s": cbor2.CBORTag(STREAM_TAG, ["T"])}], "tag 42878 must wrap [typ, frames]"),
        ([0, {"s": stream(typ=3)}], "stream 's': typ must be a string, got int"),
        ([0, {"s": cbor2.CBORTag(STREAM_TAG, ["T", b"f"])}], "frames must be a list, got bytes"),
        ([0, {"s": stream(frames=[b"ok", "text"])}], "frames must be byte strings, got str"),
        ([0, {"s": stream()}, "noon"], "created_at 'noon' is not an ISO 8601 date and time"),
        ([0, {"s": stream()}, cbor2.CBORTag(0, "noon")], "created_at 'noon' is not an ISO 8601"),
        (
            [0, {"s": stream()}, [1, 2]],
            "created_at must be a datetime (CBOR tag 0 or 1), a UNIX time or null, got list",
        ),
        ([0, {"s": stream()}, cbor2.CBORTag(40000, 1)], "a UNIX time or null, got CBOR tag 40000"),
        ([0, {"s": stream()}, float("nan")], "created_at must be a finite time, got nan"),
        ([0, {"s": stream()}, True], "a UNIX time or null, got bool"),
    ],
)
def test_wrong_inner_structure_is_named(tmp_path, fields, fragment):
    path = tmp_path / "x.cbors"
    path.write_bytes(cbor2.dumps(cbor2.CBORTag(MESSAGE_TAG, fields)))
    with pytest.raises(CaptureError) as info:
        list(read_capture(path))
    assert "item 0 at byte 0 is not an ingester dump item" in str(info.value)
    assert fragment in str(info.value)


def test_bad_item_after_good_ones_reports_its_index_and_offset(tmp_path):
    path = tmp_path / "x.cbors"
    good = cbor2.dumps(cbor2.CBORTag(MESSAGE_TAG, [0, {"s": stream()}]))
    path.write_bytes(good + good + cbor2.dumps(cbor2.CBORTag(MESSAGE_TAG, [2, {"s": 5}])))
    with pytest.raises(CaptureError) as info:
        list(read_capture(path))
    assert (info.value.index, info.value.offset) == (2, 2 * len(good))


def test_truncated_gzip_is_a_capture_error(tmp_path):
    full = tmp_path / "full.cbors.gz"
    with gzip.open(full, "wb") as fh:
        fh.write(DUMP_XRD.read_bytes())
    cut = tmp_path / "cut.cbors.gz"
    cut.write_bytes(full.read_bytes()[:-20])
    with pytest.raises(CaptureError, match="gzip stream is truncated") as info:
        list(read_capture(cut))
    assert "cut.cbors.gz" in str(info.value)


def test_truncated_gzip_delivers_every_intact_item_and_names_the_cut_one(tmp_path):
    rng = np.random.default_rng(0)
    plain = tmp_path / "big.cbors"
    write_capture(
        plain,
        [
            message(i, s=("T", [rng.integers(0, 255, 300, dtype=np.uint8).tobytes()]))
            for i in range(400)
        ],
    )
    starts = [start for start, _ in independent_items(plain)]
    packed = gzip.compress(plain.read_bytes())
    cut = tmp_path / "big.cbors.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    # What an independent decompressor can recover from the prefix decides which items are whole.
    recoverable = len(zlib.decompressobj(wbits=31).decompress(packed[: len(packed) // 2]))
    bounds = starts + [plain.stat().st_size]
    whole = sum(1 for i in range(len(starts)) if bounds[i + 1] <= recoverable)
    assert 0 < whole < 400

    got = []
    with pytest.raises(CaptureError, match="gzip stream is truncated") as info:
        for msg in read_capture(cut):
            got.append(msg.event_number)
    assert got == list(range(whole))
    assert (info.value.index, info.value.offset) == (whole, starts[whole])


def test_file_that_is_not_gzip_but_named_gz_is_a_capture_error(tmp_path):
    path = tmp_path / "fake.cbors.gz"
    shutil.copy(DUMP_XRD, path)
    with pytest.raises(CaptureError, match="item 0 at byte 0 cannot be read: not a valid gzip"):
        list(read_capture(path))


def test_gzip_file_without_gz_name_gets_a_hint(tmp_path):
    path = tmp_path / "packed.cbors"
    path.write_bytes(gzip.compress(DUMP_XRD.read_bytes()))
    with pytest.raises(CaptureError, match="looks gzip-compressed"):
        list(read_capture(path))


def test_capture_error_survives_pickling():
    error = CaptureError("data/x.cbors", 3, 1234, "is truncated (file ends inside the item)")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.index, copy.offset) == ("data/x.cbors", 3, 1234)
    assert str(copy) == "data/x.cbors: item 3 at byte 1234 is truncated (file ends inside the item)"


@pytest.mark.parametrize("name", ["empty.cbors", "empty.pkls", "empty.bin"])
def test_empty_file_has_no_messages(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    assert list(read_capture(path)) == []


def test_empty_gzip_file_has_no_messages(tmp_path):
    path = tmp_path / "empty.cbors.gz"
    with gzip.open(path, "wb"):
        pass
    assert list(read_capture(path)) == []


def test_unknown_extension_is_read_as_cbor(tmp_path):
    path = tmp_path / "dump.dat"
    shutil.copy(DUMP_XRD, path)
    assert len(list(read_capture(path))) == 11


# --- raw captures -------------------------------------------------------------------------------


def test_raw_capture_items_are_lists_of_bytes():
    items = list(read_raw_capture(XSPRESS3_RAW))
    assert len(items) == 62
    assert all(type(item) is list and all(type(f) is bytes for f in item) for item in items)


def test_raw_capture_matches_an_independent_cbor2_decode():
    expected = [list(item) for _, item in independent_items(XSPRESS3_RAW)]
    assert list(read_raw_capture(XSPRESS3_RAW)) == expected


def test_raw_capture_starts_with_the_xspress3_header():
    first = next(read_raw_capture(XSPRESS3_RAW))
    assert json.loads(first[0])["htype"] == "header"


@pytest.mark.parametrize("name", ["raw.cbors", "raw.cbors.gz"])
def test_raw_frames_read_back_unchanged(tmp_path, name):
    path = tmp_path / name
    with RawCaptureWriter(path) as writer:
        writer.write([b'{"htype": "header"}'])
        writer.write([zmq.Frame(b"meta"), memoryview(b"\x00" * 64), b"tail"])
    assert list(read_raw_capture(path)) == [
        [b'{"htype": "header"}'],
        [b"meta", b"\x00" * 64, b"tail"],
    ]


def test_raw_writer_refuses_a_message_without_frames(tmp_path):
    with RawCaptureWriter(tmp_path / "raw.cbors") as writer:
        with pytest.raises(ValueError, match="at least one frame"):
            writer.write([])


def test_raw_reader_rejects_an_ingester_dump():
    with pytest.raises(CaptureError, match="is not a raw capture item .*got CBOR tag 42877"):
        list(read_raw_capture(DUMP_XRD))


def test_raw_reader_rejects_non_bytes_frames(tmp_path):
    path = tmp_path / "raw.cbors"
    path.write_bytes(cbor2.dumps([b"ok"]) + cbor2.dumps([b"ok", 5]))
    with pytest.raises(CaptureError, match="frame 1 is int, expected a byte string") as info:
        list(read_raw_capture(path))
    assert (info.value.index, info.value.offset) == (1, len(cbor2.dumps([b"ok"])))


def test_truncated_raw_capture_is_a_capture_error(tmp_path):
    items = independent_items(XSPRESS3_RAW)
    path = tmp_path / "raw.cbors"
    path.write_bytes(XSPRESS3_RAW.read_bytes()[: items[10][0] + 100])
    with pytest.raises(CaptureError, match="truncated") as info:
        list(read_raw_capture(path))
    assert (info.value.index, info.value.offset) == (10, items[10][0])


def test_reading_a_raw_capture_as_a_dump_suggests_the_raw_reader():
    with pytest.raises(CaptureError, match="read_raw_capture"):
        list(read_capture(XSPRESS3_RAW))


# --- the content decides the format, not the name ------------------------------------------------


@pytest.mark.parametrize("name", ["dump.pkls", "dump.pkls.gz", "dump.bin"])
def test_a_cbor_dump_under_any_name_reads(tmp_path, name):
    # the original's deployments wrote CBOR dumps to DUMP_PATH=...pkls
    written = [with_bytes_frames(m) for m in mixed_messages()]
    cbors = tmp_path / ("x.cbors.gz" if name.endswith(".gz") else "x.cbors")
    write_capture(cbors, written)
    path = tmp_path / name
    cbors.rename(path)
    assert [as_plain(m) for m in read_capture(path)] == [as_plain(m) for m in written]


def test_pickles_under_a_cbors_name_read(tmp_path):
    path = tmp_path / "dump.cbors"
    written = [with_bytes_frames(m) for m in mixed_messages()]
    write_pickles(path, written)
    assert [as_plain(m) for m in read_capture(path)] == [as_plain(m) for m in written]

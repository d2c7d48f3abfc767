"""Xspress3 packets: both stream variants, frame grouping, building frames, malformed messages."""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pytest
import zmq

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.xspress3.packets import (
    META_NAMES,
    XSPRESS_TYPE,
    XspressEnd,
    XspressImage,
    XspressPacket,
    XspressStart,
)
from dranspose.protocols.xspress3.parser import FrameGrouper, group_single_frames, parse
from tests.support.pickles import raw_items, reference_loads

SINGLE = "xspress3-dump.cbors"
MULTIPART = "xspress3-multipart.cbors"
MINI = "xspress3mini-dump20.cbors"


def reference_messages(name: str) -> list[list[bytes]]:
    """The frames of each message, grouped by the layout the capture has, checked with json."""
    items = raw_items(name)
    if all(len(item) == 1 for item in items):
        frames = [item[0] for item in items]
        assert json.loads(frames[0])["htype"] == "header"
        assert json.loads(frames[-1])["htype"] == "series_end"
        body = frames[1:-1]
        assert len(body) % 3 == 0
        images = [body[i : i + 3] for i in range(0, len(body), 3)]
        for image in images:
            assert json.loads(image[0])["htype"] == "image"
        return [[frames[0]], *images, [frames[-1]]]
    return items


def reference_image(frames: list[bytes]) -> tuple[dict[str, Any], np.ndarray, list[Any]]:
    """Header, spectra and meta of an image message, decoded without dranspose."""
    header = json.loads(frames[0])
    spectra = np.frombuffer(frames[1], dtype="<u4").reshape(header["shape"])
    return header, spectra, reference_loads(frames[2])


def xspress(*frames: Any) -> StreamData:
    return StreamData.model_construct(typ=XSPRESS_TYPE, frames=list(frames))


def parse_all(messages: list[list[Any]]) -> list[Any]:
    return [parse(xspress(*message)) for message in messages]


@pytest.fixture(scope="module", params=[SINGLE, MULTIPART, MINI])
def capture(request) -> tuple[str, list[list[bytes]]]:
    return request.param, reference_messages(request.param)


def image_frames(name: str = SINGLE, index: int = 1) -> list[bytes]:
    return reference_messages(name)[index]


# --- the captures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, items, images, frames",
    [
        (SINGLE, 62, 20, list(range(20))),
        (MULTIPART, 7, 5, list(range(5))),
        # this capture holds frames 0..10 twice, byte for byte
        (MINI, 68, 22, list(range(11)) * 2),
    ],
)
def test_capture_layout(name, items, images, frames):
    raw = raw_items(name)
    assert len(raw) == items
    messages = list(group_single_frames(raw))
    packets = parse_all(messages)
    assert isinstance(packets[0], XspressStart)
    assert isinstance(packets[-1], XspressEnd)
    assert [type(p) for p in packets[1:-1]] == [XspressImage] * images
    assert [p.frame for p in packets[1:-1]] == frames


def test_single_frame_capture_items_are_one_frame_each():
    assert {len(item) for item in raw_items(SINGLE)} == {1}
    assert {len(item) for item in raw_items(MINI)} == {1}


def test_multipart_capture_items_are_whole_messages():
    assert [len(item) for item in raw_items(MULTIPART)] == [1, 3, 3, 3, 3, 3, 1]


def test_grouping_matches_the_reference_layout(capture):
    name, expected = capture
    assert list(group_single_frames(raw_items(name))) == expected


def test_images_match_the_raw_bytes(capture):
    _name, messages = capture
    for message in messages[1:-1]:
        packet = parse(xspress(*message))
        header, spectra, meta = reference_image(message)
        assert packet.frame == header["frame"]
        assert packet.exptime == header["exptime"]
        assert packet.shape == header["shape"]
        assert packet.type == "uint32"
        assert packet.data.dtype == np.uint32
        assert packet.data.shape == tuple(header["shape"])
        np.testing.assert_array_equal(packet.data, spectra)
        assert int(packet.data.sum()) == int(spectra.sum())
        assert len(packet.meta_list()) == len(meta)
        for name_, got, want in zip(META_NAMES, packet.meta_list(), meta):
            assert got.dtype == want.dtype, name_
            np.testing.assert_array_equal(got, want, err_msg=name_)


def test_single_frame_capture_values():
    packets = parse_all(reference_messages(SINGLE))
    start = packets[0]
    assert start.filename.endswith("/raw/dummy/scan_000002_xspress3.hdf5")
    assert start.overwritable is False
    image = packets[1]
    assert image.data.shape == (4, 4096)
    assert int(image.data.sum()) == 1
    np.testing.assert_array_equal(image.AllEvents, np.array([2, 0, 0, 3], dtype=np.uint32))
    np.testing.assert_array_equal(image.ResetTicks, [0, 0, 0, 91])
    assert image.ClockTicks.tolist() == [7999990] * 4
    assert image.event_widths.dtype == np.int32
    assert image.dtc[0] == 1.00000175000525
    assert image.ocr[3] == 1.5625019531274415e-15
    assert image.window_counts is None
    assert list(image.meta) == list(META_NAMES)


def test_multipart_capture_values():
    packets = parse_all(reference_messages(MULTIPART))
    assert packets[0].extra_tags[-1] == "window_counts"
    assert len(packets[0].extra_tags) == len(META_NAMES) + 1
    sums = [int(p.data.sum()) for p in packets[1:-1]]
    assert sums == [12303, 14079, 11091, 9818, 6717]
    # channel 3 is the only one with counts; its good events equal the counts in the spectrum
    assert [int(p.AllGood[3]) for p in packets[1:-1]] == sums
    image = packets[2]
    assert image.window_counts.shape == (2, 4)
    assert image.window_counts.tolist() == [[0, 0, 0, 2], [0, 0, 0, 2]]
    assert list(image.meta) == [*META_NAMES, "window_counts"]
    assert image.dtc[3] == 1.8357377733821947


def test_mini_capture_values():
    packets = parse_all(reference_messages(MINI))
    image = packets[1]
    assert image.data.shape == (2, 4096)
    assert int(image.data.sum()) == 12138
    assert image.AllEvents.tolist() == [11750, 547]
    assert image.dtc.shape == (2,)
    # the second run of frames repeats the first
    np.testing.assert_array_equal(packets[1].data, packets[12].data)


def test_data_is_a_view_of_the_frame():
    frames = image_frames()
    packet = parse(xspress(*frames))
    assert not packet.data.flags.writeable
    assert np.shares_memory(packet.data, np.frombuffer(frames[1], dtype=np.uint8))


def test_zmq_frames_are_read_without_copy():
    frames = [zmq.Frame(frame) for frame in image_frames()]
    packet = parse(xspress(*frames))
    assert np.shares_memory(packet.data, np.frombuffer(frames[1].buffer, dtype=np.uint8))
    np.testing.assert_array_equal(packet.data, reference_image(image_frames())[1])


def test_both_variants_decode_alike():
    # The captures come from different scans; repack each into the other variant instead.
    for name in (SINGLE, MULTIPART):
        messages = reference_messages(name)
        single = [[frame] for message in messages for frame in message]
        multipart = [list(message) for message in messages]
        from_single = parse_all(list(group_single_frames(single)))
        from_multipart = parse_all(list(group_single_frames(multipart)))
        assert len(from_single) == len(from_multipart) == len(messages)
        for a, b in zip(from_single, from_multipart):
            assert a.model_dump() == b.model_dump()
            if isinstance(a, XspressImage):
                np.testing.assert_array_equal(a.data, b.data)
                for key in a.meta:
                    np.testing.assert_array_equal(a.meta[key], b.meta[key])


def test_meta_arrays_are_writeable():
    packet = parse(xspress(*image_frames()))
    packet.dtc *= 2
    assert packet.dtc[0] == 2 * 1.00000175000525


def test_adapter_picks_the_packet():
    assert isinstance(XspressPacket.validate_json(image_frames(SINGLE, 0)[0]), XspressStart)
    assert isinstance(XspressPacket.validate_json(b'{"htype": "series_end"}'), XspressEnd)


# --- grouping ------------------------------------------------------------------------------------


def test_grouping_single_bare_frames():
    frames = [item[0] for item in raw_items(SINGLE)]
    messages = list(group_single_frames(frames))
    assert [len(m) for m in messages] == [1] + [3] * 20 + [1]


def test_grouping_skips_frames_before_a_header():
    messages = reference_messages(SINGLE)
    # joined in the middle of image 0: its spectra and meta arrive without the header
    stream = [messages[1][1], messages[1][2], *[f for m in messages[2:] for f in m]]
    skipped = []
    grouped = list(group_single_frames(stream, on_skip=lambda f, why: skipped.append((f, why))))
    assert [f for f, _ in skipped] == [messages[1][1], messages[1][2]]
    assert "not a JSON header" in skipped[0][1]
    assert grouped == messages[2:]


def test_grouping_hands_out_an_incomplete_image_at_the_end():
    messages = reference_messages(SINGLE)
    stream = [messages[0][0], *messages[1][:2]]
    grouped = list(group_single_frames(stream))
    assert grouped == [messages[0], messages[1][:2]]
    with pytest.raises(ParseError, match=r"frame=0: frame 2 \(meta pickle\) is missing"):
        parse(xspress(*grouped[1]))


def test_grouping_cuts_an_image_short_at_the_next_header():
    messages = reference_messages(SINGLE)
    stream = [messages[1][0], messages[2][0], messages[2][1], messages[2][2]]
    assert list(group_single_frames(stream)) == [[messages[1][0]], messages[2]]


def test_grouping_passes_multipart_messages_through():
    messages = reference_messages(MULTIPART)
    assert list(group_single_frames(messages)) == messages


def test_grouper_feed_one_by_one():
    messages = reference_messages(SINGLE)
    grouper = FrameGrouper()
    assert grouper.feed([messages[0][0]]) == [messages[0]]
    assert grouper.feed([messages[1][0]]) == []
    assert grouper.pending == 1
    assert grouper.feed(messages[1][1]) == []
    assert grouper.feed([messages[1][2]]) == [messages[1]]
    assert grouper.pending == 0
    assert grouper.flush() == []


def test_grouping_zmq_frames():
    frames = [zmq.Frame(item[0]) for item in raw_items(SINGLE)[:4]]
    grouped = list(group_single_frames([[frame] for frame in frames]))
    assert [len(m) for m in grouped] == [1, 3]
    assert grouped[1][1] is frames[2]
    packet = parse(xspress(*grouped[1]))
    assert packet.frame == 0


# --- building frames -----------------------------------------------------------------------------


def sample_meta(channels: int = 3, windows: bool = False) -> dict[str, np.ndarray]:
    meta = {
        "ocr": np.linspace(0, 1, channels),
        "AllEvents": np.arange(channels, dtype=np.uint32),
        "AllGood": np.arange(channels, dtype=np.uint32),
        "ClockTicks": np.full(channels, 80, dtype=np.uint32),
        "TotalTicks": np.full(channels, 80, dtype=np.uint32),
        "ResetTicks": np.zeros(channels, dtype=np.uint32),
        "event_widths": np.full(channels, 6, dtype=np.int32),
        "dtc": np.ones(channels),
    }
    if windows:
        meta["window_counts"] = np.ones((2, channels), dtype=np.uint32)
    return meta


def test_image_round_trip():
    spectra = np.arange(3 * 4096, dtype=np.uint32).reshape(3, 4096)
    image = XspressImage.from_array(spectra, frame=4, exptime=0.1, meta=sample_meta(windows=True))
    frames = image.to_stream_data().frames
    assert len(frames) == 3
    assert json.loads(frames[0]) == {
        "htype": "image",
        "frame": 4,
        "shape": [3, 4096],
        "exptime": 0.1,
        "type": "uint32",
        "compression": "none",
    }
    assert frames[1] == spectra.tobytes()
    assert len(pickle.loads(frames[2])) == 9
    parsed = parse(image.to_stream_data())
    np.testing.assert_array_equal(parsed.data, spectra)
    for key, value in sample_meta(windows=True).items():
        np.testing.assert_array_equal(parsed.meta[key], value)


def test_image_round_trip_through_single_frames():
    spectra = np.ones((2, 4096), dtype=np.uint32)
    messages = [
        XspressStart(filename="/tmp/x.h5").to_stream_data().frames,
        XspressImage.from_array(spectra, frame=0, meta=sample_meta(2)).to_stream_data().frames,
        XspressEnd().to_stream_data().frames,
    ]
    single = [frame for message in messages for frame in message]
    packets = parse_all(list(group_single_frames(single)))
    assert [type(p) for p in packets] == [XspressStart, XspressImage, XspressEnd]
    assert int(packets[1].data.sum()) == 2 * 4096


def test_start_and_end_frames():
    assert json.loads(XspressStart(filename="f").to_stream_data().frames[0]) == {
        "htype": "header",
        "filename": "f",
    }
    end = XspressEnd().to_stream_data()
    assert end.typ == XSPRESS_TYPE == "xspress"
    assert json.loads(end.frames[0]) == {"htype": "series_end"}


def test_extra_meta_items_are_kept():
    frames = image_frames()
    meta = reference_loads(frames[2])
    extra = pickle.dumps([*meta, np.zeros((1, 4)), "later"], protocol=4)
    packet = parse(xspress(frames[0], frames[1], extra))
    assert packet.window_counts.shape == (1, 4)
    assert packet.extra_meta == ["later"]
    assert packet.meta_list()[-1] == "later"


# --- malformed messages --------------------------------------------------------------------------


def replace_header(**fields: Any) -> list[bytes]:
    frames = list(image_frames())
    header = json.loads(frames[0])
    header.update(fields)
    frames[0] = json.dumps({k: v for k, v in header.items() if v is not ...}).encode()
    return frames


def test_no_frames():
    with pytest.raises(ParseError, match="xspress stream: no frames"):
        parse(xspress())


def test_spectra_size_mismatch():
    frames = image_frames()
    with pytest.raises(
        ParseError,
        match=r"xspress image frame=0: frame 1 \(spectra\) has 65532 bytes, expected 65536 bytes "
        r"for shape \[4, 4096\] of uint32",
    ):
        parse(xspress(frames[0], frames[1][:-4], frames[2]))


def test_missing_meta():
    frames = image_frames()
    with pytest.raises(ParseError, match=r"frame 2 \(meta pickle\) is missing; expected 3 frames"):
        parse(xspress(frames[0], frames[1]))


def test_missing_spectra():
    with pytest.raises(ParseError, match=r"frame 1 \(spectra\) is missing"):
        parse(xspress(image_frames()[0]))


def test_too_many_frames():
    frames = image_frames()
    with pytest.raises(ParseError, match="has 4 frames; expected 3 frames"):
        parse(xspress(*frames, frames[2]))


def test_bad_json():
    frames = image_frames()
    with pytest.raises(ParseError, match=r"xspress frame 0 \(header\): not valid JSON") as info:
        parse(xspress(b'{"htype": "image", ', frames[1], frames[2]))
    assert info.value.__cause__ is not None


def test_json_not_an_object():
    with pytest.raises(ParseError, match=r"got JSON list \[1, 2\], expected a JSON object"):
        parse(xspress(b"[1, 2]"))


def test_unknown_htype():
    with pytest.raises(ParseError, match="htype 'frame'; expected htype to be one of"):
        parse(xspress(b'{"htype": "frame"}'))


def test_missing_htype():
    with pytest.raises(ParseError, match="no 'htype' field"):
        parse(xspress(b'{"frame": 1}'))


def test_invalid_header_field():
    with pytest.raises(ParseError, match=r"invalid 'image' header: frame: .*got 'first'"):
        parse(xspress(*replace_header(frame="first")))


def test_header_missing_field():
    with pytest.raises(ParseError, match="invalid 'image' header: shape is missing"):
        parse(xspress(*replace_header(shape=...)))


def test_start_without_filename():
    with pytest.raises(ParseError, match="invalid 'header' header: filename is missing"):
        parse(xspress(b'{"htype": "header"}'))


def test_shape_not_two_dimensional():
    with pytest.raises(ParseError, match=r"header shape \[16384\] is not \[channels, bins\]"):
        parse(xspress(*replace_header(shape=[16384])))


def test_type_not_numeric():
    with pytest.raises(ParseError, match="header type 'str' is not a numeric numpy dtype"):
        parse(xspress(*replace_header(type="str")))


def test_compressed_image():
    with pytest.raises(ParseError, match="compression 'bslz4' is not supported"):
        parse(xspress(*replace_header(compression="bslz4")))


def test_start_with_extra_frames():
    start = image_frames(SINGLE, 0)[0]
    with pytest.raises(ParseError, match="'header' message has 2 frames, expected only the header"):
        parse(xspress(start, start))


def test_refused_meta_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    frames = image_frames()
    evil = f"cos\nsystem\n(Vtouch {marker}\ntR.".encode()
    with pytest.raises(
        ParseError,
        match=r"xspress image frame=0: frame 2 \(meta pickle\): refused pickle global 'os\.system'",
    ):
        parse(xspress(frames[0], frames[1], evil))
    assert not marker.exists()


def test_truncated_meta_pickle():
    frames = image_frames()
    with pytest.raises(ParseError, match=r"frame 2 \(meta pickle\): pickle is truncated"):
        parse(xspress(frames[0], frames[1], frames[2][:-20]))


def test_meta_not_a_list():
    frames = image_frames()
    meta = pickle.dumps({"dtc": np.ones(4)})
    with pytest.raises(ParseError, match=r"frame 2 \(meta pickle\) holds a dict, expected a list"):
        parse(xspress(frames[0], frames[1], meta))


def test_meta_too_short():
    frames = image_frames()
    meta = pickle.dumps(reference_loads(frames[2])[:7])
    with pytest.raises(ParseError, match="holds 7 items, expected at least 8"):
        parse(xspress(frames[0], frames[1], meta))


def test_meta_item_for_other_channel_count():
    frames = image_frames()
    meta = reference_loads(frames[2])
    meta[7] = np.ones(2)
    with pytest.raises(
        ParseError,
        match=r"item 7 \(dtc\) is an array of shape \(2,\) and dtype float64, expected a numeric "
        r"array of shape \(4,\)",
    ):
        parse(xspress(frames[0], frames[1], pickle.dumps(meta)))


def test_meta_item_not_an_array():
    frames = image_frames()
    meta = reference_loads(frames[2])
    meta[0] = [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ParseError, match=r"item 0 \(ocr\) is a list"):
        parse(xspress(frames[0], frames[1], pickle.dumps(meta)))


def test_window_counts_of_wrong_shape():
    frames = image_frames(MULTIPART)
    meta = reference_loads(frames[2])
    meta[8] = np.zeros(4, dtype=np.uint32)
    with pytest.raises(ParseError, match=r"item 8 \(window_counts\) is an array of shape \(4,\)"):
        parse(xspress(frames[0], frames[1], pickle.dumps(meta)))


def test_frame_of_wrong_type():
    frames = image_frames()
    with pytest.raises(ParseError, match=r"frame 1 \(spectra\) is a int, expected bytes"):
        parse(xspress(frames[0], 17, frames[2]))

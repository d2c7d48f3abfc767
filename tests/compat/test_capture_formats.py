"""Ingester dumps in every layout the original dranspose wrote, written here with cbor2 (or
pickle) directly, never with our writer, then read and replayed.

The layouts, oldest first (see docs/capture-files.md):

* ``.pkls``: consecutive pickles of ``dranspose.event.InternalWorkerMessage``, whose state has
  only ``event_number`` and ``streams`` (no ``created_at`` attribute at all);
* CBOR tag 42877 ``[event_number, {name: tag 42878 [typ, frames]}]`` without ``created_at``
  (``data/dump_xrd.cbors`` is a real one);
* the same with ``created_at`` a timezone-aware datetime, which cbor2 writes as tag 0 (an RFC 3339
  string) or, with ``datetime_as_timestamp``, tag 1 (UNIX time).
"""

from __future__ import annotations

import calendar
import gzip
import pickle
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cbor2
import pytest

from dranspose.event import InternalWorkerMessage, StreamData
from dranspose.io.capture import MESSAGE_TAG, STREAM_TAG, CaptureError, read_capture
from dranspose.replay import replay

ROOT = Path(__file__).resolve().parents[2]
DUMP_XRD = ROOT / "data" / "dump_xrd.cbors"

ARMED = datetime(2024, 3, 5, 10, 12, 3, 257841, tzinfo=timezone.utc)


def epoch(year, month, day, hour, minute, second, micro=0):
    """UNIX time of a UTC wall-clock time, computed without datetime.timestamp()."""
    return calendar.timegm((year, month, day, hour, minute, second)) + micro / 1e6


ARMED_EPOCH = epoch(2024, 3, 5, 10, 12, 3, 257841)


def frames_of(number):
    return [f'{{"htype": "image", "frame": {number}}}'.encode(), bytes([number]) * (number + 1)]


def tagged_item(number, *extra, stream_name="det"):
    stream = cbor2.CBORTag(STREAM_TAG, ["STINS", frames_of(number)])
    return cbor2.CBORTag(MESSAGE_TAG, [number, {stream_name: stream}, *extra])


def write_items(path, items, **dump_options):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        for item in items:
            fh.write(cbor2.dumps(item, **dump_options))
    return path


# --- payloads that report exactly which frames they saw -------------------------------------------


class FrameWorker:
    def __init__(self, *args, **kwargs):
        pass

    def process_event(self, event, parameters=None):
        return {
            "event": event.event_number,
            "streams": {
                name: [bytes(f) for f in data.frames] for name, data in event.streams.items()
            },
        }


class FrameReducer:
    seen: list[dict[str, Any]] = []
    finished = threading.Event()

    def __init__(self, *args, **kwargs):
        self.publish: dict[str, Any] = {}

    def process_result(self, result, parameters=None):
        FrameReducer.seen.append(result.payload)

    def finish(self, parameters=None):
        FrameReducer.finished.set()


@pytest.fixture
def reducer_log():
    FrameReducer.seen = []
    FrameReducer.finished = threading.Event()
    return FrameReducer


def replay_frames(path, reducer_log):
    summary = replay(FrameWorker, FrameReducer, [path], None, None, nworkers=1)
    return summary, sorted(reducer_log.seen, key=lambda r: r["event"])


def expected_results(numbers, stream_name="det"):
    return [{"event": n, "streams": {stream_name: frames_of(n)}} for n in numbers]


# --- created_at as the original's later releases wrote it -----------------------------------------

CREATED_AT_FORMS = {
    "aware datetime, tag 0": (lambda n: ARMED + timedelta(seconds=n), {}),
    "aware datetime, tag 1": (
        lambda n: ARMED + timedelta(seconds=n),
        {"datetime_as_timestamp": True},
    ),
    "+02:00 datetime, tag 0": (
        lambda n: (ARMED + timedelta(seconds=n)).astimezone(timezone(timedelta(hours=2))),
        {},
    ),
    "naive tag 0 string": (
        lambda n: cbor2.CBORTag(0, (ARMED + timedelta(seconds=n)).replace(tzinfo=None).isoformat()),
        {},
    ),
    "Z tag 0 string, nanoseconds": (
        lambda n: cbor2.CBORTag(0, f"2024-03-05T10:12:{3 + n:02d}.257841574Z"),
        {},
    ),
    "float": (lambda n: ARMED_EPOCH + n, {}),
    "integer": (lambda n: int(ARMED_EPOCH) + n, {}),
    "absent": (None, {}),
    "null": (lambda n: None, {}),
}


def expected_created_at(form, number):
    if form == "absent" or form == "null":
        return None
    if form == "integer":
        return float(int(ARMED_EPOCH) + number)
    return ARMED_EPOCH + number


@pytest.mark.parametrize("form", list(CREATED_AT_FORMS))
@pytest.mark.parametrize("name", ["dump.cbors", "dump.cbors.gz"])
def test_created_at_in_every_form_is_read_as_unix_time(tmp_path, form, name):
    make, options = CREATED_AT_FORMS[form]
    items = [tagged_item(n, *([] if make is None else [make(n)])) for n in range(4)]
    path = write_items(tmp_path / name, items, **options)
    messages = list(read_capture(path))
    assert [m.event_number for m in messages] == [0, 1, 2, 3]
    for n, message in enumerate(messages):
        want = expected_created_at(form, n)
        if want is None:
            assert message.created_at is None
        else:
            assert type(message.created_at) is float
            assert message.created_at == pytest.approx(want, abs=1e-6)
        assert message.streams["det"].typ == "STINS"
        assert message.streams["det"].frames == frames_of(n)


@pytest.mark.parametrize(
    "form", ["aware datetime, tag 0", "aware datetime, tag 1", "naive tag 0 string", "absent"]
)
def test_replay_processes_every_event_of_a_datetime_dump(tmp_path, reducer_log, form):
    make, options = CREATED_AT_FORMS[form]
    items = [tagged_item(n, *([] if make is None else [make(n)])) for n in range(5)]
    path = write_items(tmp_path / "dump.cbors", items, **options)
    summary, results = replay_frames(path, reducer_log)
    assert summary.ok, [f.describe() for f in summary.failures]
    assert summary.events == 5
    assert results == expected_results(range(5))
    assert reducer_log.finished.is_set()


def test_the_real_dump_without_created_at_replays(reducer_log):
    # data/dump_xrd.cbors was written by the original's ingester: 11 items [number, streams].
    independent = []
    with open(DUMP_XRD, "rb") as fh:
        while fh.peek(1):
            item = cbor2.load(fh)
            independent.append((item.value[0], [bytes(f) for f in item.value[1]["xrd"].value[1]]))
    summary = replay(FrameWorker, FrameReducer, [DUMP_XRD], None, None, nworkers=1)
    assert summary.ok and summary.events == 11
    got = sorted((r["event"], r["streams"]["xrd"]) for r in reducer_log.seen)
    assert got == independent


# --- the original's pickled dumps ------------------------------------------------------------------


def original_pickled_message(number, **streams):
    """An InternalWorkerMessage whose state is what the original's pydantic model pickled:
    no ``created_at`` attribute (the original's model had no such field)."""
    message = InternalWorkerMessage.__new__(InternalWorkerMessage)
    message.__setstate__(
        {
            "__dict__": {
                "event_number": number,
                "streams": {
                    name: StreamData(typ=typ, frames=frames)
                    for name, (typ, frames) in streams.items()
                },
            },
            "__pydantic_extra__": None,
            "__pydantic_fields_set__": {"event_number", "streams"},
            "__pydantic_private__": None,
        }
    )
    assert "created_at" not in message.__dict__
    return message


@pytest.mark.parametrize("name", ["dump.pkls", "dump.pkls.gz"])
def test_original_pickles_without_created_at_replay(tmp_path, reducer_log, name):
    path = tmp_path / name
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "wb") as fh:
        for n in range(3):
            pickle.dump(original_pickled_message(n, det=("STINS", frames_of(n))), fh)
    messages = list(read_capture(path))
    assert [m.created_at for m in messages] == [None, None, None]
    summary, results = replay_frames(path, reducer_log)
    assert summary.ok and summary.events == 3
    assert results == expected_results(range(3))


def test_pickled_naive_datetime_is_taken_as_utc(tmp_path):
    message = original_pickled_message(0, det=("STINS", frames_of(0)))
    message.__dict__["created_at"] = ARMED.replace(tzinfo=None)
    path = tmp_path / "dump.pkls"
    path.write_bytes(pickle.dumps(message))
    (read,) = read_capture(path)
    assert read.created_at == pytest.approx(ARMED_EPOCH, abs=1e-6)


# --- structure: tagged or not, fields beyond the known ones ----------------------------------------


def test_untagged_streams_and_untagged_items_are_read(tmp_path, reducer_log):
    items = [
        cbor2.CBORTag(MESSAGE_TAG, [0, {"det": ["STINS", frames_of(0)]}]),
        [1, {"det": cbor2.CBORTag(STREAM_TAG, ["STINS", frames_of(1)])}, ARMED],
        {
            "event_number": 2,
            "streams": {"det": {"typ": "STINS", "frames": frames_of(2), "length": 2}},
            "created_at": ARMED,
        },
        cbor2.CBORTag(
            MESSAGE_TAG, {"event_number": 3, "streams": {"det": ["STINS", frames_of(3)]}}
        ),
    ]
    path = write_items(tmp_path / "dump.cbors", items)
    messages = list(read_capture(path))
    assert [m.created_at for m in messages] == [
        None,
        pytest.approx(ARMED_EPOCH),
        pytest.approx(ARMED_EPOCH),
        None,
    ]
    summary, results = replay_frames(path, reducer_log)
    assert summary.ok and summary.events == 4
    assert results == expected_results(range(4))


def test_fields_after_the_known_ones_are_ignored(tmp_path, reducer_log):
    items = [
        cbor2.CBORTag(
            MESSAGE_TAG,
            [
                n,
                {"det": cbor2.CBORTag(STREAM_TAG, ["STINS", frames_of(n), "extra"])},
                ARMED,
                {"future": n},
            ],
        )
        for n in range(3)
    ]
    path = write_items(tmp_path / "dump.cbors", items)
    summary, results = replay_frames(path, reducer_log)
    assert summary.ok and summary.events == 3
    assert results == expected_results(range(3))


def test_an_event_without_streams_still_counts(tmp_path):
    path = write_items(
        tmp_path / "dump.cbors",
        [cbor2.CBORTag(MESSAGE_TAG, [0, {}, ARMED]), cbor2.CBORTag(MESSAGE_TAG, [1, None])],
    )
    assert [(m.event_number, m.streams) for m in read_capture(path)] == [(0, {}), (1, {})]


# --- really broken data is refused, naming file, item, offset and what was expected ----------------


@pytest.mark.parametrize(
    "bad, fragment",
    [
        (cbor2.CBORTag(MESSAGE_TAG, ["2", {}]), "event_number must be an int, got str"),
        (
            cbor2.CBORTag(
                MESSAGE_TAG, [2, {"det": cbor2.CBORTag(STREAM_TAG, ["STINS", ["text"]])}]
            ),
            "stream 'det': frames must be byte strings, got str as frame 0",
        ),
        (
            cbor2.CBORTag(MESSAGE_TAG, [2, {}, cbor2.CBORTag(0, "yesterday")]),
            "created_at 'yesterday' is not an ISO 8601 date and time",
        ),
        (cbor2.CBORTag(MESSAGE_TAG, [2, {}, "soon"]), "created_at 'soon' is not an ISO 8601"),
        (cbor2.CBORTag(MESSAGE_TAG, {"event_number": 2}), "tag 42877 has no 'streams'"),
        (
            cbor2.CBORTag(MESSAGE_TAG, [2, {"det": {"frames": []}}]),
            "stream 'det': expected CBOR tag 42878 wrapping [typ, frames], got dict",
        ),
    ],
)
@pytest.mark.expect_errors
def test_broken_item_after_good_ones_is_named_and_replay_keeps_the_good_ones(
    tmp_path, reducer_log, bad, fragment
):
    good = [tagged_item(n, ARMED) for n in range(2)]
    path = write_items(tmp_path / "broken.cbors", good + [bad])
    offset = sum(len(cbor2.dumps(item)) for item in good)
    with pytest.raises(CaptureError) as info:
        list(read_capture(path))
    assert (info.value.index, info.value.offset) == (2, offset)
    assert str(info.value).startswith(f"{path}: item 2 at byte {offset} is not an ingester dump")
    assert fragment in str(info.value)

    summary, results = replay_frames(path, reducer_log)
    assert summary.events == 2
    assert results == expected_results(range(2))
    assert any(fragment in failure.message for failure in summary.failures), summary.failures

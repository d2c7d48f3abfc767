"""The original's CBOR hooks, ``dranspose.event.message_encoder`` and ``message_tag_hook``.

Tools written for the original read and write ingester dumps with
``cbor2.load(f, tag_hook=message_tag_hook)`` and ``cbor2.dump(msg, f, default=message_encoder)``.
``tests/data/original_packets/original-dump.cbors`` was written by the original 0.2.0 with its
hooks, and ``original-dump.json`` records what the original read back from it and from the file
ours writes for the same events (``record_capture.py`` there says how to rerun it). These tests
run under cbor2 6 and, in .ci/run, under cbor2 5 too.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import cbor2
import pytest
import zmq

from dranspose.event import (
    InternalWorkerMessage,
    StreamData,
    message_encoder,
    message_tag_hook,
)
from dranspose.io.capture import read_capture

DATA = Path(__file__).parent / "data" / "original_packets"
ORIGINAL_FILE = DATA / "original-dump.cbors"
RECORD = json.loads((DATA / "original-dump.json").read_text())


def _as_record(msg: InternalWorkerMessage) -> dict:
    """The same plain form record_capture.py wrote with the original."""
    return {
        "event_number": msg.event_number,
        "streams": {
            name: {"typ": data.typ, "frames": [bytes(f).hex() for f in data.frames]}
            for name, data in msg.streams.items()
        },
        "created_at": datetime.fromtimestamp(msg.created_at, timezone.utc).isoformat(),
    }


def _load_all(blob: bytes) -> list:
    f = io.BytesIO(blob)
    out = []
    while f.tell() < len(blob):
        out.append(cbor2.load(f, tag_hook=message_tag_hook))
    return out


def _messages() -> list[InternalWorkerMessage]:
    """The events record_capture.py built, built here with ours (a datetime created_at)."""
    base = datetime(2024, 5, 17, 9, 30, 12, 250000, tzinfo=timezone.utc)
    return [
        InternalWorkerMessage(
            event_number=n,
            streams={
                "eiger": StreamData(typ="STINS", frames=[b'{"htype":"image"}', bytes([n]) * 5]),
                "orca": StreamData(typ="STINS", frames=[b"%d" % n]),
            },
            created_at=base.replace(second=12 + n),
        )
        for n in range(1, 4)
    ]


def test_ours_reads_what_the_original_wrote():
    messages = _load_all(ORIGINAL_FILE.read_bytes())
    assert all(isinstance(m, InternalWorkerMessage) for m in messages)
    assert [_as_record(m) for m in messages] == RECORD["original_reads_its_own"]


def test_ours_writes_what_the_original_writes_and_reads():
    buffer = io.BytesIO()
    for msg in _messages():
        cbor2.dump(msg, buffer, default=message_encoder)
    assert buffer.getvalue() == ORIGINAL_FILE.read_bytes()
    # and the original read that file (recorded) to the same events
    assert RECORD["original_reads_ours"] == RECORD["original_reads_its_own"]


def test_the_capture_reader_reads_the_original_s_file():
    assert [_as_record(m) for m in read_capture(ORIGINAL_FILE)] == RECORD["original_reads_its_own"]


def test_frames_held_by_zmq_and_a_missing_time_encode():
    msg = InternalWorkerMessage(
        event_number=7, streams={"s": StreamData(typ="raw", frames=[zmq.Frame(b"abc"), b"d"])}
    )
    (back,) = _load_all(cbor2.dumps(msg, default=message_encoder))
    assert back.event_number == 7 and back.created_at is None
    assert back.streams["s"].typ == "raw" and back.streams["s"].frames == [b"abc", b"d"]


def test_other_tags_and_values_pass_through_and_unknown_types_are_refused():
    other = cbor2.loads(cbor2.dumps(cbor2.CBORTag(4000, [1])), tag_hook=message_tag_hook)
    assert isinstance(other, cbor2.CBORTag) and other.tag == 4000 and list(other.value) == [1]
    with pytest.raises(TypeError, match="not set"):
        message_encoder(cbor2.CBOREncoder(io.BytesIO()), {1})


@pytest.mark.parametrize(
    "item, detail",
    [
        (cbor2.CBORTag(42877, ["one", {}]), "event_number must be an int, got str"),
        (
            cbor2.CBORTag(42877, [1, {"s": cbor2.CBORTag(42878, ["t", "ab"])}]),
            "frames must be a list",
        ),
        (cbor2.CBORTag(42878, [5, []]), "typ must be a string"),
    ],
)
def test_a_malformed_item_is_refused_with_its_detail(item, detail):
    # cbor2 6 wraps the hook's ValueError in a CBORDecodeError; cbor2 5 does not
    with pytest.raises((ValueError, cbor2.CBORDecodeError)) as info:
        cbor2.loads(cbor2.dumps(item), tag_hook=message_tag_hook)
    causes = []
    exc: BaseException | None = info.value
    while exc is not None:
        causes.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert any(detail in text for text in causes), causes

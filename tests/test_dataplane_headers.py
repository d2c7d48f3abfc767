"""The ingester-to-worker header is one typed model both ends go through (io/messages.py)."""

from __future__ import annotations

import pytest
import zmq

from dranspose.io.dataplane import PartialEventsHeader, PartialHeader, decode_partial


def test_the_written_header_is_the_model_the_worker_reads() -> None:
    parts = PartialHeader("scan-3", "eiger", "STINS").message([(5, [b"ab", b"c"]), (6, [b"d"])])
    header = PartialEventsHeader.model_validate_json(parts[0])
    assert header == PartialEventsHeader(
        scan="scan-3", stream="eiger", typ="STINS", events=[(5, 2), (6, 1)], packed=[2, 1, 1]
    )
    unpacked = PartialEventsHeader.model_validate_json(PartialHeader("s", "e", "t")([(1, 3)]))
    assert unpacked.packed is None and unpacked.events == [(1, 3)]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"stream": "e", "typ": "t", "events": [[1, 1]]}',  # no scan
        b'{"scan": "s", "stream": "e", "typ": "t", "events": [[1]]}',  # half an event
        b'{"scan": "s", "stream": "e", "typ": "t", "events": [["one", 1]]}',
        b"not json",
    ],
)
def test_a_header_that_is_not_the_model_is_refused(raw: bytes) -> None:
    with pytest.raises(ValueError):
        decode_partial([zmq.Frame(raw), zmq.Frame(b"x")])

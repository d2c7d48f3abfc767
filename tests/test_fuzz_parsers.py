"""Fuzzing every protocol parser and the capture readers with malformed input (hypothesis).

Only the documented errors may come out (``ParseError``, ``CaptureError``), never another
exception, a crash or a hang; see ``tests/fuzz_targets.py`` for the inputs and the contract per
target. ``DRANSPOSE_FUZZ_EXAMPLES`` sets the inputs per target (default 100, a quick check in CI);
``bench/badinput.py fuzz`` runs the full campaign of 10,000 per target.
"""

from __future__ import annotations

import json
import os
import resource

import pytest
from hypothesis import HealthCheck, given, settings

from dranspose.middlewares.errors import ParseError
from dranspose.middlewares.safe_pickle import safe_loads
from dranspose.middlewares.sardana import frame_for_post
from dranspose.protocols import Kind, get_protocol
from tests.fuzz_targets import TARGETS, time_limit

EXAMPLES = int(os.environ.get("DRANSPOSE_FUZZ_EXAMPLES", "100"))


def fuzz(name: str, examples: int) -> int:
    """Run ``examples`` generated inputs through target ``name``; the count actually run."""
    target = TARGETS[name]
    count = 0

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(target.inputs())
    def run(value):
        nonlocal count
        count += 1
        with time_limit():
            target.run(value)

    run()
    return count


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_malformed_input_raises_only_the_documented_error(name):
    assert fuzz(name, EXAMPLES) >= min(EXAMPLES, 50)


# --- what the campaign found, kept as plain regression tests -------------------------------------

COUNTED = ["stins", "pcap", "albaem", "xspress", "lecroy", "eiger_legacy"]


@pytest.mark.parametrize("protocol", COUNTED)
@pytest.mark.parametrize("kind", [[], {}, 3, None])
def test_message_counter_ignores_a_message_whose_kind_is_not_a_string(protocol, kind):
    counter = get_protocol(protocol).counter
    frame = {"htype": kind, "message_type": kind, "frame": 3, "msg_number": 3, "message_id": 3}
    assert counter.number([json.dumps(frame).encode()]) in (None, 3)
    if counter.number([json.dumps({**frame, "htype": "x", "message_type": "x"}).encode()]) is None:
        # a protocol that counts only some kinds: a non-string kind is none of them
        assert counter.number([json.dumps(frame).encode()]) is None


@pytest.mark.parametrize("what", [[], {}, "0", 0.5, True])
def test_lecroy_message_whose_what_is_not_an_integer_is_an_event(what):
    frame = json.dumps({"msg": "control", "what": what}).encode()
    assert get_protocol("lecroy").classify([frame]) is Kind.EVENT


@pytest.mark.parametrize("protocol", ["stins", "pcap", "lecroy", "sardana"])
def test_deeply_nested_json_is_classified_as_an_event(protocol):
    proto = get_protocol(protocol)
    marker = {"stins": b'"header"', "pcap": b'"series-start"', "lecroy": b'"msg"',
              "sardana": b'"DataDescription"'}[protocol]
    frame = b'{"htype": ' + marker + b', "message_type": ' + marker + b', "type": ' + marker \
        + b', "msg": 1, "frame": 1, "x": ' + b"[" * 100_000
    assert proto.classify([frame]) is Kind.EVENT
    if proto.counter is not None:
        assert proto.counter.number([frame]) is None


def test_sardana_post_nested_too_deeply_is_a_parse_error():
    with pytest.raises(ParseError) as info:
        frame_for_post("record_data", b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert str(info.value) == (
        "POST /v1/record_data: body is JSON nested too deeply; expected a flat JSON object")


@pytest.mark.parametrize("data, position", [(b"K\x8fr\xb8^\xc6\x0c", 2),
                                            (b"K\x8fp214000000\n.", 2),
                                            (b"\x80\x02K\x01r\x00\x00\x00\x10.", 4)])
def test_pickle_with_a_huge_memo_index_is_refused_without_allocating(data, position):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with time_limit(1.0), pytest.raises(ParseError) as info:
        safe_loads(data, "contrast frame 0")
    assert str(info.value) == (
        f"contrast frame 0: memo index at byte {position} is out of range for a "
        f"{len(data)}-byte pickle; not a valid pickle")
    # the C unpickler would have grown its memo to gigabytes; peak memory stays where it was
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB


@pytest.mark.parametrize("data", [b"p-1\n", b"pabc\n.", b"p\n", b"r\x01"])
def test_pickle_with_a_malformed_memo_index_is_a_parse_error(data):
    with pytest.raises(ParseError):
        safe_loads(b"K\x01" + data, "frame")


@pytest.mark.parametrize("data", [b"I1\nc", b"I1\ncmodule\n", b"\x80\x02I1\nh\x06c"])
def test_pickle_cut_inside_a_global_is_refused_promptly(data):
    with time_limit(1.0), pytest.raises(ParseError):
        safe_loads(data, "frame")

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

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.safe_pickle import safe_loads
from dranspose.protocols.registry import Kind, get_protocol
from dranspose.protocols.sardana.parser import frame_for_post
from tests.fuzz_targets import TARGETS, time_limit

EXAMPLES = int(os.environ.get("DRANSPOSE_FUZZ_EXAMPLES", "100"))


def fuzz(name: str, examples: int) -> int:
    """Run ``examples`` generated inputs through target ``name``; the count actually run."""
    target = TARGETS[name]
    count = 0

    @settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
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
    marker = {
        "stins": b'"header"',
        "pcap": b'"series-start"',
        "lecroy": b'"msg"',
        "sardana": b'"DataDescription"',
    }[protocol]
    frame = (
        b'{"htype": '
        + marker
        + b', "message_type": '
        + marker
        + b', "type": '
        + marker
        + b', "msg": 1, "frame": 1, "x": '
        + b"[" * 100_000
    )
    assert proto.classify([frame]) is Kind.EVENT
    if proto.counter is not None:
        assert proto.counter.number([frame]) is None


def test_sardana_post_nested_too_deeply_is_a_parse_error():
    with pytest.raises(ParseError) as info:
        frame_for_post("record_data", b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert str(info.value) == (
        "POST /v1/record_data: body is JSON nested too deeply; expected a flat JSON object"
    )


@pytest.mark.parametrize(
    "data, position",
    [
        (b"K\x8fr\xb8^\xc6\x0c", 2),
        (b"K\x8fp214000000\n.", 2),
        (b"\x80\x02K\x01r\x00\x00\x00\x10.", 4),
    ],
)
def test_pickle_with_a_huge_memo_index_is_refused_without_allocating(data, position):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with time_limit(1.0), pytest.raises(ParseError) as info:
        safe_loads(data, "contrast frame 0")
    assert str(info.value) == (
        f"contrast frame 0: memo index at byte {position} is out of range for a "
        f"{len(data)}-byte pickle; not a valid pickle"
    )
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


# --- compressed images: decoded on first access, so fuzz the read of ``data`` too ---------------


def _compressed_seeds() -> list[tuple[str, list[int], str, bytes]]:
    from dranspose.protocols.stream1.packets import encode_frame

    rng = np.random.default_rng(0)
    seeds = []
    for compression in ("bslz4", "bszstd", "lz4"):
        for shape, dtype in (((37, 53), "uint16"), ((3, 1000), "uint32"), ((1, 7), "int8")):
            array = rng.integers(0, 300, size=shape).astype(dtype)
            block = 256 if compression == "lz4" else 0
            seeds.append((compression, list(shape), dtype, encode_frame(array, compression, block)))
    return seeds


COMPRESSED_SEEDS = _compressed_seeds()


@st.composite
def _mutated_compressed(draw):
    compression, shape, dtype, frame = draw(st.sampled_from(COMPRESSED_SEEDS))
    blob = bytearray(frame)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "scramble", "scramble", "cut", "grow", "header"]))
        if action == "flip" and blob:
            blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
        elif action == "scramble" and len(blob) > 17:
            # inside the first block's compressed bytes: the layout stays, the content breaks
            at = draw(st.integers(16, len(blob) - 1))
            noise = draw(st.binary(min_size=1, max_size=8))
            blob[at : at + len(noise)] = noise[: len(blob) - at]
        elif action == "cut":
            del blob[draw(st.integers(0, len(blob))) :]
        elif action == "grow":
            blob += draw(st.binary(max_size=16))
        elif len(blob) >= 12:
            blob[draw(st.integers(0, 11))] = draw(st.integers(0, 255))
    return compression, shape, dtype, bytes(blob)


def test_malformed_compressed_images_raise_only_parse_errors_also_on_first_access():
    from dranspose.core.event import StreamData
    from dranspose.middlewares import eiger_legacy, stream1

    count = 0

    @settings(
        max_examples=EXAMPLES * 3,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_mutated_compressed())
    def run(value):
        nonlocal count
        count += 1
        compression, shape, dtype, blob = value
        header = json.dumps(
            {
                "htype": "image",
                "msg_number": 1,
                "frame": 0,
                "shape": shape,
                "type": dtype,
                "compression": compression,
            }
        ).encode()
        streams = [(stream1.parse, StreamData.model_construct(typ="STINS", frames=[header, blob]))]
        if compression == "bslz4":
            bits = 8 * np.dtype(dtype).itemsize
            descriptor = json.dumps(
                {
                    "htype": "dimage_d-1.0",
                    "shape": shape[::-1],
                    "type": dtype,
                    "encoding": f"bs{bits}-lz4<",
                }
            ).encode()
            frames = [
                b'{"htype": "dimage-1.0", "series": 1, "frame": 0}',
                descriptor,
                blob,
                b'{"htype": "dconfig-1.0"}',
            ]
            streams.append(
                (eiger_legacy.parse, StreamData.model_construct(typ="EIGER_LEGACY", frames=frames))
            )
        for parse, stream in streams:
            with time_limit():
                try:
                    packet = parse(stream)
                except ParseError:
                    continue
                try:
                    data = packet.data
                except ParseError:
                    continue
                assert data.size == int(np.prod(shape))

    run()
    assert count >= min(EXAMPLES, 50)

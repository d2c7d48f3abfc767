"""Parameter files are recognised by their content, not their name, as in the original dranspose
(its replay tries JSON, then pickle, then CBOR), and replayed payloads see their values.

The records are what the original's payload tooling writes: ``[{"name": ..., "data": ...}]``
with ``data`` a string (JSON, and pickles/CBOR too) or bytes (pickle, CBOR: e.g. a pickled numpy
array for a file parameter), or pickled ``WorkParameter`` objects.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import cbor2
import numpy as np
import pytest

from dranspose.io.capture import MESSAGE_TAG, STREAM_TAG
from dranspose.parameters import (
    IntParameter,
    ParameterError,
    ParameterSet,
    ParameterValueError,
    StrParameter,
    describe,
    read_parameter_file,
)
from dranspose.protocol import WorkParameter
from dranspose.replay import replay

MASK = pickle.dumps(np.ones((3, 3)))
"""A binary value, as the original's replay tests store a file parameter."""

TEXT_RECORDS = [{"name": "roi1", "data": "[10,20]"}, {"name": "x", "data": "3"}]
BINARY_RECORDS = TEXT_RECORDS + [{"name": "mask", "data": MASK}]

EXPECTED_TEXT = {"roi1": b"[10,20]", "x": b"3"}
EXPECTED_BINARY = {**EXPECTED_TEXT, "mask": MASK}


def as_json(records):
    return json.dumps(records).encode()


def as_pickle(records):
    return pickle.dumps(records)


def as_pickle_protocol_0(records):
    return pickle.dumps(records, protocol=0)


def as_pickled_work_parameters(records):
    return pickle.dumps(
        [
            WorkParameter(
                name=r["name"],
                data=r["data"] if isinstance(r["data"], bytes) else r["data"].encode(),
            )
            for r in records
        ]
    )


def as_cbor(records):
    return cbor2.dumps(records)


FORMATS = {
    "json": (as_json, TEXT_RECORDS, EXPECTED_TEXT),
    "pickle": (as_pickle, BINARY_RECORDS, EXPECTED_BINARY),
    "pickle-protocol-0": (as_pickle_protocol_0, BINARY_RECORDS, EXPECTED_BINARY),
    "pickled-WorkParameter": (as_pickled_work_parameters, BINARY_RECORDS, EXPECTED_BINARY),
    "cbor": (as_cbor, BINARY_RECORDS, EXPECTED_BINARY),
}
NAMES = [
    "params.json",
    "params.pkl",
    "params.pickle",
    "params.cbor",
    "params.cbors",
    "params.txt",
    "params.yaml",
    "params",
]


def write_parameters(tmp_path: Path, fmt: str, name: str, records=None) -> Path:
    encode, default_records, _ = FORMATS[fmt]
    path = tmp_path / name
    path.write_bytes(encode(default_records if records is None else records))
    return path


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_loads_under_every_name(tmp_path, fmt, name):
    path = write_parameters(tmp_path, fmt, name)
    assert read_parameter_file(path) == FORMATS[fmt][2]


def test_the_original_replay_tests_files_load_under_each_others_names(tmp_path):
    # tests/test_replay.py of the original writes binparams.pkl (pickle) and binparams.cbor
    # (CBOR) with these records; here each carries the other's name.
    records = [
        {"name": "roi1", "data": "[10,20]"},
        {"name": "file_parameter_file", "data": pickle.dumps(np.ones((10, 10)))},
    ]
    pkl_named = tmp_path / "binparams.pkl"
    pkl_named.write_bytes(cbor2.dumps(records))
    cbor_named = tmp_path / "binparams.cbor"
    cbor_named.write_bytes(pickle.dumps(records))
    for path in (pkl_named, cbor_named):
        raw = read_parameter_file(path)
        assert raw["roi1"] == b"[10,20]"
        assert np.array_equal(pickle.loads(raw["file_parameter_file"]), np.ones((10, 10)))


# --- what a replayed payload sees ------------------------------------------------------------------


class UndeclaredWorker:
    """Declares nothing: reads the file's values as the original's payloads do."""

    def __init__(self, *args, **kwargs):
        pass

    def process_event(self, event, parameters=None):
        seen = {}
        for name in ("roi1", "x", "mask", "absent"):
            if name in parameters:
                seen[name] = parameters[name].data
        return seen


class DeclaredWorker(UndeclaredWorker):
    @staticmethod
    def describe_parameters():
        return [
            IntParameter(name="x", default=1),
            StrParameter(name="roi1"),
            IntParameter(name="declared_only", default=7),
        ]

    def process_event(self, event, parameters=None):
        seen = super().process_event(event, parameters)
        seen["x.value"] = parameters["x"].value
        seen["roi1.value"] = parameters["roi1"].value
        seen["declared_only.value"] = parameters["declared_only"].value
        return seen


class CollectingReducer:
    results: list[Any] = []

    def __init__(self, *args, **kwargs):
        self.publish: dict[str, Any] = {}

    def process_result(self, result, parameters=None):
        CollectingReducer.results.append(result.payload)


@pytest.fixture
def dump(tmp_path):
    path = tmp_path / "dump.cbors"
    stream = cbor2.CBORTag(STREAM_TAG, ["STINS", [b'{"htype": "header"}']])
    path.write_bytes(
        b"".join(cbor2.dumps(cbor2.CBORTag(MESSAGE_TAG, [n, {"det": stream}])) for n in range(3))
    )
    CollectingReducer.results = []
    return path


@pytest.mark.parametrize("name", ["params.json", "params.pkl", "params.cbor", "params"])
@pytest.mark.parametrize("fmt", ["json", "pickle", "cbor"])
def test_payload_without_declarations_reads_the_data(tmp_path, dump, fmt, name):
    path = write_parameters(tmp_path, fmt, name)
    summary = replay(UndeclaredWorker, CollectingReducer, [dump], None, path, nworkers=1)
    assert summary.ok and summary.events == 3
    assert CollectingReducer.results == [FORMATS[fmt][2]] * 3


@pytest.mark.parametrize("name", ["params.json", "params.pkl", "params.cbor", "params"])
@pytest.mark.parametrize("fmt", ["json", "pickle", "cbor"])
def test_payload_with_declarations_gets_typed_values(tmp_path, dump, fmt, name):
    path = write_parameters(tmp_path, fmt, name)
    summary = replay(DeclaredWorker, CollectingReducer, [dump], None, path, nworkers=1)
    assert summary.ok and summary.events == 3
    expected = {**FORMATS[fmt][2], "x.value": 3, "roi1.value": "[10,20]", "declared_only.value": 7}
    assert CollectingReducer.results == [expected] * 3


@pytest.mark.parametrize("name", ["params.json", "params.pkl", "params.cbor"])
@pytest.mark.parametrize("fmt", ["json", "pickle", "cbor"])
@pytest.mark.expect_errors
def test_a_bad_value_for_a_declared_parameter_is_refused(tmp_path, dump, fmt, name):
    path = write_parameters(
        tmp_path, fmt, name, records=[{"name": "x", "data": "three"}, {"name": "roi1", "data": "r"}]
    )
    with pytest.raises(ParameterValueError) as info:
        replay(DeclaredWorker, CollectingReducer, [dump], None, path, nworkers=1)
    message = str(info.value)
    assert "parameter 'x'" in message
    assert "b'three'" in message
    assert "expected an integer" in message
    assert CollectingReducer.results == []


def test_undeclared_names_are_kept_as_raw_bytes(tmp_path):
    path = write_parameters(tmp_path, "cbor", "p.pkl")
    params = ParameterSet.from_raw(describe([DeclaredWorker]), read_parameter_file(path))
    assert "mask" in params and "absent" not in params
    assert params["mask"].data == MASK
    assert params["x"].value == 3 and params["x"].data == b"3"


# --- what is refused --------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b"\x82\xff\x00 not anything", b""], ids=["garbage", "empty"])
def test_a_file_in_no_format_names_the_file_and_why_each_failed(tmp_path, content):
    path = tmp_path / "params.pkl"
    path.write_bytes(content)
    with pytest.raises(ParameterError) as info:
        read_parameter_file(path)
    message = str(info.value)
    assert message.startswith(f"parameter file {str(path)!r} is not valid JSON, pickle or CBOR (")
    json_part, pickle_part, cbor_part = message.split("(", 1)[1].split("; ")[:3]
    assert json_part.startswith("JSON: ")
    assert pickle_part.startswith("pickle: ")
    assert cbor_part.startswith("CBOR: ")
    if content:
        assert "not UTF-8 text (byte 0x82 at offset 0)" in json_part
    else:
        assert "the file is empty" in pickle_part and "the file is empty" in cbor_part


@pytest.mark.parametrize("fmt", ["json", "pickle", "cbor"])
def test_a_record_without_a_name_says_which_record_and_format(tmp_path, fmt):
    path = write_parameters(
        tmp_path, fmt, "p.bin", records=[{"name": "x", "data": "1"}, {"data": "2"}]
    )
    kind = {"json": "JSON", "pickle": "pickle", "cbor": "CBOR"}[fmt]
    with pytest.raises(ParameterError, match=rf"p\.bin' \({kind}\), record 1: expected a record"):
        read_parameter_file(path)


def test_a_record_with_only_a_value_uses_its_text(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"name": "x", "value": 4}, {"name": "roi1", "value": "a"}]))
    assert read_parameter_file(path) == {"x": b"4", "roi1": b"a"}

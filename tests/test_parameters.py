"""Parameter declarations, parsing of raw values and parameter files."""

import json
import math
import pickle

import cbor2
import pytest

from dranspose.core.parameters import (
    MAX_PARAMETER_BYTES,
    BinaryParameter,
    BoolParameter,
    FloatParameter,
    IntParameter,
    ParameterDescription,
    ParameterError,
    ParameterSet,
    ParameterValueError,
    StrParameter,
    describe,
    read_parameter_file,
)
from dranspose.core.protocol import WorkParameter


@pytest.mark.parametrize(
    "param, raw, expected",
    [
        (IntParameter(name="n"), b"3", 3),
        (IntParameter(name="n"), b" -12 ", -12),
        (FloatParameter(name="f"), b"0.5", 0.5),
        (FloatParameter(name="f"), b"1e-3", 1e-3),
        (FloatParameter(name="f"), b"-2", -2.0),
        (StrParameter(name="s"), "Å/ü".encode(), "Å/ü"),
        (StrParameter(name="s"), b"", ""),
        (BoolParameter(name="b"), b"true", True),
        (BoolParameter(name="b"), b"False", False),
        (BoolParameter(name="b"), b"1", True),
        (BoolParameter(name="b"), b"0", False),
        (BinaryParameter(name="p"), b"\x00\xffponi", b"\x00\xffponi"),
    ],
)
def test_valid_values_parse_to_their_type(param, raw, expected):
    value = param.from_bytes(raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    "param, raw, fragment",
    [
        (IntParameter(name="till_x"), b"3.5", "int"),
        (IntParameter(name="till_x"), b"abc", "int"),
        (IntParameter(name="till_x"), b"", "int"),
        (IntParameter(name="till_x"), b"true", "int"),
        (FloatParameter(name="thr"), b"1,5", "float"),
        (FloatParameter(name="thr"), b"", "float"),
        (BoolParameter(name="flag"), b"maybe", "bool"),
        (StrParameter(name="label"), b"\xff\xfe", "UTF-8"),
    ],
)
def test_invalid_values_name_parameter_value_and_type(param, raw, fragment):
    with pytest.raises(ParameterValueError) as info:
        param.from_bytes(raw)
    message = str(info.value)
    assert repr(param.name) in message
    assert repr(raw) in message
    assert fragment in message


def test_oversized_value_is_refused():
    with pytest.raises(ParameterValueError, match="exceeds the limit"):
        BinaryParameter(name="mask").from_bytes(b"x" * (MAX_PARAMETER_BYTES + 1))


@pytest.mark.parametrize(
    "param, value",
    [
        (IntParameter(name="n"), -7),
        (FloatParameter(name="f"), 0.1),
        (FloatParameter(name="f"), math.inf),
        (StrParameter(name="s"), "a b"),
        (BoolParameter(name="b"), True),
        (BinaryParameter(name="p"), b"\x01\x02"),
    ],
)
def test_to_bytes_round_trips(param, value):
    assert param.from_bytes(param.to_bytes(value)) == value


def test_default_must_match_declared_type():
    with pytest.raises(ValueError):
        IntParameter(name="n", default="2")
    with pytest.raises(ValueError):
        IntParameter(name="n", default=2.5)


class _Worker:
    @staticmethod
    def describe_parameters():
        return [IntParameter(name="till_x", default=2), StrParameter(name="label", default="a")]


class _Reducer:
    @staticmethod
    def describe_parameters():
        return [BoolParameter(name="save", default=True)]


def test_undeclared_parameters_take_their_defaults():
    params = ParameterSet.from_raw(describe([_Worker, _Reducer]), {})
    assert params["till_x"].value == 2
    assert params["till_x"].data == b"2"
    assert params["label"].value == "a"
    assert params["save"].value is True


def test_file_values_override_defaults_and_unknown_names_stay_raw(caplog):
    params = ParameterSet.from_raw(describe([_Worker]), {"till_x": b"5", "mystery": b"42"})
    assert params["till_x"].value == 5
    assert params["mystery"].value == b"42"
    assert "mystery" in caplog.text


def test_conflicting_declarations_are_refused():
    class Other:
        @staticmethod
        def describe_parameters():
            return [FloatParameter(name="till_x")]

    with pytest.raises(ParameterError, match="till_x"):
        describe([_Worker, Other])


def test_hash_changes_with_values_and_sets_are_immutable():
    first = ParameterSet.from_raw(describe([_Worker]), {})
    second = first.with_data("till_x", b"3")
    assert first["till_x"].value == 2
    assert second["till_x"].value == 3
    assert first.hash != second.hash
    assert ParameterSet.from_raw(describe([_Worker]), {"till_x": b"3"}).hash == second.hash


def test_with_data_keeps_undeclared_raw_and_refuses_invalid():
    params = ParameterSet.from_raw(describe([_Worker]), {})
    # an undeclared name keeps its raw bytes, as the original's (payloads read .data)
    kept = params.with_data("nope", b"\x00poni")
    assert kept["nope"].data == kept["nope"].value == b"\x00poni"
    assert kept.hash != params.hash
    with pytest.raises(ParameterValueError, match="exceeds the limit"):
        params.with_data("nope", b"\x00" * (MAX_PARAMETER_BYTES + 1))
    with pytest.raises(ParameterValueError):
        params.with_data("till_x", b"x")


def test_json_parameter_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"name": "till_x", "data": "3"}, {"name": "from_y", "data": "7"}]))
    assert read_parameter_file(path) == {"till_x": b"3", "from_y": b"7"}


def test_cbor_parameter_file(tmp_path):
    path = tmp_path / "p.cbor"
    path.write_bytes(cbor2.dumps([{"name": "mask", "data": b"\x00\x01"}]))
    assert read_parameter_file(path) == {"mask": b"\x00\x01"}


def test_pickled_parameter_file_of_work_parameters(tmp_path):
    path = tmp_path / "p.pkl"
    records = [WorkParameter(name="till_x", data=b"4", value=4)]
    path.write_bytes(pickle.dumps(records))
    assert read_parameter_file(path) == {"till_x": b"4"}


def test_malformed_parameter_file_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("[{'name': 1}")
    with pytest.raises(ParameterError, match="bad.json"):
        read_parameter_file(path)


def test_parameter_record_without_string_data_is_refused(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"name": "till_x", "data": {"x": 1}}]))
    with pytest.raises(ParameterError, match="till_x"):
        read_parameter_file(path)


def test_duplicate_names_in_a_file_are_refused(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"name": "a", "data": "1"}, {"name": "a", "data": "2"}]))
    with pytest.raises(ParameterError, match="twice"):
        read_parameter_file(path)


def test_published_declarations_of_every_type_read_back_equal():
    """What a component publishes (JSON) reads back as the same declaration, bytes included."""
    declared = [
        IntParameter(name="i", default=3, description="d"),
        FloatParameter(name="f"),
        StrParameter(name="s", default="x"),
        BoolParameter(name="b", default=True),
        BinaryParameter(name="mask", default=b"\x00\x01mask"),
    ]
    for param in declared:
        published = json.loads(json.dumps(param.model_dump(mode="json")))
        assert ParameterDescription.from_published(published) == param

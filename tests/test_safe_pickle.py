"""The restricted unpickler: what it builds, what it refuses, and that refusing runs nothing."""

from __future__ import annotations

import collections
import datetime
import io
import os
import pickle
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.safe_pickle import ALLOWED_GLOBALS, safe_loads
from tests.support.pickles import CAPTURE_GLOBALS, raw_items, reference_loads

CAPTURES = [
    "contrast-dump.cbors",
    "xspress3-dump.cbors",
    "xspress3-multipart.cbors",
    "xspress3mini-dump20.cbors",
]
PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)

try:
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]


def capture_pickles(name: str) -> list[bytes]:
    return [frame for item in raw_items(name) for frame in item if frame[:1] == b"\x80"]


def globals_named(data: bytes) -> set[tuple[str, str]]:
    """The (module, name) pairs a capture pickle looks up: each unknown one is recorded and
    stops the load, and the load is repeated until it completes or finds nothing new."""
    found: set[tuple[str, str]] = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            key = (module, name)
            if key in found and key in CAPTURE_GLOBALS:
                return CAPTURE_GLOBALS[key]
            found.add(key)
            raise pickle.UnpicklingError("stop")

    while True:
        count = len(found)
        try:
            Recording(io.BytesIO(data)).load()
            return found
        except pickle.UnpicklingError:
            if len(found) == count:
                return found


def assert_same(actual: Any, expected: Any, path: str = "value") -> None:
    """Deep equality that also compares types, dtypes, shapes and memory order."""
    assert type(actual) is type(expected), f"{path}: {type(actual)} != {type(expected)}"
    if isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype, path
        assert actual.shape == expected.shape, path
        assert actual.tobytes(order="A") == expected.tobytes(order="A"), path
        assert actual.flags.f_contiguous == expected.flags.f_contiguous, path
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), path
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), path
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{path}[{index}]")
    elif isinstance(expected, float) and expected != expected:
        assert actual != actual, path
    else:
        assert actual == expected, path


# --- the captures ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CAPTURES)
def test_captures_name_only_these_globals(name):
    named = set()
    for data in capture_pickles(name):
        named |= globals_named(data)
    assert named <= set(CAPTURE_GLOBALS)
    assert named <= set(ALLOWED_GLOBALS)


@pytest.mark.parametrize(
    "name, count", [(CAPTURES[0], 26), (CAPTURES[1], 20), (CAPTURES[2], 5), (CAPTURES[3], 22)]
)
def test_capture_pickles_decode_like_the_reference(name, count):
    pickles = capture_pickles(name)
    assert len(pickles) == count
    for data in pickles:
        assert_same(safe_loads(data, name), reference_loads(data))


def test_xspress3_meta_pickle_values():
    data = capture_pickles("xspress3-dump.cbors")[0]
    meta = safe_loads(data, "meta")
    assert isinstance(meta, list) and len(meta) == 8
    np.testing.assert_array_equal(meta[1], np.array([2, 0, 0, 3], dtype=np.uint32))
    assert meta[6].dtype == np.int32
    assert meta[7].dtype == np.float64
    assert meta[7][0] == 1.00000175000525


def test_capture_arrays_are_writeable_copies():
    meta = safe_loads(capture_pickles("xspress3-multipart.cbors")[0], "meta")
    assert all(array.flags.writeable for array in meta)
    meta[0][0] = 5.0
    assert meta[0][0] == 5.0


# --- plain data and numpy values, every protocol ------------------------------------------------


PLAIN_VALUES = [
    None,
    True,
    False,
    0,
    -7,
    2**100,
    1.5,
    float("inf"),
    float("nan"),
    1 + 2j,
    "",
    "snow ☃",
    b"",
    b"\x00\xff\x80 bytes",
    bytearray(b"\x00\x80\xff"),
    bytearray(),
    [],
    [1, [2, [3]]],
    (),
    (1, "a", (None,)),
    {},
    {"a": 1, 2: "b", (1, 2): [3]},
    {1, 2, 3},
    set(),
    frozenset({"x", "y"}),
    collections.OrderedDict([("z", 1), ("a", 2)]),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("value", PLAIN_VALUES, ids=repr)
def test_plain_data_round_trips(value, protocol):
    assert_same(safe_loads(pickle.dumps(value, protocol=protocol), "plain"), value)


NUMPY_ARRAYS = [
    np.arange(5, dtype=np.uint32),
    np.arange(12, dtype=np.float64).reshape(3, 4),
    np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
    np.arange(12).reshape(3, 4)[:, ::2],
    np.array([1, 2, 3], dtype=">u2"),
    np.array(7.5),
    np.zeros((0, 4)),
    np.array([1 + 2j], dtype=np.complex64),
    np.array([True, False]),
    np.array(["ab", "c"]),
    np.array([b"xyz"]),
    np.array(["2024-11-01T12:00"], dtype="M8[m]"),
    np.array([5, 6], dtype="m8[ms]"),
    np.zeros(2, dtype=[("a", "<i4"), ("b", ">f8", (2,))]),
    np.zeros(1, dtype=np.dtype([("a", "i1"), ("b", "f8")], align=True)),
    np.zeros(3, dtype="V5"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("array", NUMPY_ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
def test_numpy_arrays_round_trip(array, protocol):
    result = safe_loads(pickle.dumps(array, protocol=protocol), "array")
    assert type(result) is np.ndarray
    assert result.dtype == array.dtype
    assert result.shape == array.shape
    assert result.tobytes() == array.tobytes()
    # numpy pickles Fortran-ordered arrays in Fortran order, everything else in C order
    fortran_only = array.flags.f_contiguous and not array.flags.c_contiguous
    assert result.flags.f_contiguous if fortran_only else result.flags.c_contiguous


NUMPY_SCALARS = [
    np.float64(1.5),
    np.float32(-2.25),
    np.float16(3),
    np.int8(-5),
    np.uint64(2**63 + 1),
    np.complex128(1 - 1j),
    np.bool_(True),
    np.str_("text"),
    np.bytes_(b"raw"),
    np.datetime64("2024-11-01"),
    np.timedelta64(90, "s"),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("scalar", NUMPY_SCALARS, ids=repr)
def test_numpy_scalars_round_trip(scalar, protocol):
    result = safe_loads(pickle.dumps(scalar, protocol=protocol), "scalar")
    assert type(result) is type(scalar)
    assert result.dtype == scalar.dtype
    assert result == scalar


NUMPY_DTYPES = [
    np.dtype("f8"),
    np.dtype(">i4"),
    np.dtype("U7"),
    np.dtype("S3"),
    np.dtype("M8[us]"),
    np.dtype("M8"),
    np.dtype(("f4", (2, 3))),
    np.dtype([("x", "<u2"), ("y", "S4")]),
    np.dtype({"names": ["a"], "formats": ["i4"], "titles": ["A title"]}),
]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("dtype", NUMPY_DTYPES, ids=str)
def test_numpy_dtypes_round_trip(dtype, protocol):
    result = safe_loads(pickle.dumps(dtype, protocol=protocol), "dtype")
    assert isinstance(result, np.dtype)
    assert result == dtype
    assert result.str == dtype.str


def test_nested_containers_with_arrays():
    shared = np.arange(3)
    value = {"k": (shared, [np.float32(1), shared]), "od": collections.OrderedDict(a=shared)}
    result = safe_loads(pickle.dumps(value), "nested")
    assert type(result["k"]) is tuple
    array = result["k"][0]
    assert type(array) is np.ndarray
    assert result["k"][1][1] is array
    assert result["od"]["a"] is array
    np.testing.assert_array_equal(array, [0, 1, 2])


def test_protocol5_in_band_buffers_are_views_like_numpy():
    array = np.arange(4, dtype=np.int32)
    data = pickle.dumps(array, protocol=5)
    result = safe_loads(data, "p5")
    np.testing.assert_array_equal(result, array)
    assert result.flags.writeable == pickle.loads(data).flags.writeable


def test_memoryview_input():
    data = pickle.dumps([1, np.arange(2)])
    result = safe_loads(memoryview(data), "view")
    assert result[0] == 1
    np.testing.assert_array_equal(result[1], [0, 1])


def test_self_referencing_list():
    value: list[Any] = [1]
    value.append(value)
    result = safe_loads(pickle.dumps(value), "cycle")
    assert result[1] is result


def test_self_referencing_list_with_array():
    value: list[Any] = [np.arange(2)]
    value.append(value)
    result = safe_loads(pickle.dumps(value), "cycle")
    assert result[1] is result
    assert type(result[0]) is np.ndarray


# --- refusals: nothing runs -----------------------------------------------------------------


def _call_pickle(module: str, name: str, *args: str) -> bytes:
    """A protocol 0 pickle calling ``module.name(*args)``, written by hand."""
    arguments = "".join(f"V{arg}\n" for arg in args)
    return f"c{module}\n{name}\n({arguments}tR.".encode()


def test_os_system_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "marker"
    data = _call_pickle("os", "system", f"touch {marker}")
    with pytest.raises(ParseError) as info:
        safe_loads(data, "contrast frame 0")
    message = str(info.value)
    assert "'os.system'" in message
    assert message.startswith("contrast frame 0: refused pickle global")
    assert not marker.exists()


def test_os_system_via_reduce_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "marker"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for protocol in PROTOCOLS:
        with pytest.raises(ParseError, match=rf"'{os.system.__module__}\.system'"):
            safe_loads(pickle.dumps(Exploit(), protocol=protocol), "meta")
    assert not marker.exists()


def test_builtins_eval_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "marker"
    data = _call_pickle("builtins", "eval", f"open({str(marker)!r}, 'w').close()")
    with pytest.raises(ParseError, match=r"refused pickle global 'builtins\.eval'"):
        safe_loads(data, "meta")
    assert not marker.exists()


def test_python2_builtin_eval_is_refused(tmp_path):
    marker = tmp_path / "marker"
    data = _call_pickle("__builtin__", "eval", f"open({str(marker)!r}, 'w').close()")
    with pytest.raises(ParseError, match=r"'__builtin__\.eval'"):
        safe_loads(data, "meta")
    assert not marker.exists()


def test_subprocess_popen_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "marker"
    data = f"csubprocess\nPopen\n((Vtouch\nV{marker}\nltR.".encode()
    with pytest.raises(ParseError, match=r"refused pickle global 'subprocess\.Popen'"):
        safe_loads(data, "meta")
    assert not marker.exists()


def test_subprocess_popen_via_reduce_protocol4_is_refused(tmp_path):
    marker = tmp_path / "marker"

    class Exploit:
        def __reduce__(self):
            return (subprocess.Popen, (["touch", str(marker)],))

    with pytest.raises(ParseError, match=r"'subprocess\.Popen'"):
        safe_loads(pickle.dumps(Exploit(), protocol=4), "meta")
    assert not marker.exists()


def test_getattr_import_chain_is_refused_and_not_run(tmp_path):
    """The usual bypass of a name filter: getattr(__import__("os"), "system")("touch ...")."""
    marker = tmp_path / "marker"
    data = (
        f"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(Vos\ntRVsystem\ntR(Vtouch {marker}\ntR."
    ).encode()
    with pytest.raises(ParseError, match=r"refused pickle global 'builtins\.getattr'"):
        safe_loads(data, "meta")
    assert not marker.exists()


def _short_unicode(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


def test_stack_global_of_protocol_4_is_filtered_too(tmp_path):
    """Protocol 4 names globals from the stack (STACK_GLOBAL), not inline: refused alike."""
    marker = tmp_path / "marker"
    data = (
        b"\x80\x04"
        + _short_unicode("os")
        + _short_unicode("system")
        + b"\x93"
        + _short_unicode(f"touch {marker}")
        + b"\x85R."
    )  # TUPLE1, REDUCE, STOP
    with pytest.raises(ParseError, match=r"refused pickle global 'os\.system'"):
        safe_loads(data, "meta")
    assert not marker.exists()


def test_reduce_of_an_arbitrary_class_is_refused_and_not_constructed(tmp_path):
    """A class whose constructor acts (here: creates a file) is never called."""
    marker = tmp_path / "marker.log"
    data = f"clogging\nFileHandler\n(V{marker}\ntR.".encode()
    with pytest.raises(ParseError, match=r"refused pickle global 'logging\.FileHandler'"):
        safe_loads(data, "meta")
    assert not marker.exists()


class Recorded:
    """A custom class whose construction and state-setting leave a trace."""

    calls: list[str] = []

    def __init__(self) -> None:
        Recorded.calls.append("init")

    def __setstate__(self, state: Any) -> None:
        Recorded.calls.append("setstate")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_custom_class_is_refused_and_not_built(protocol):
    data = pickle.dumps([1, Recorded()], protocol=protocol)
    Recorded.calls.clear()
    with pytest.raises(ParseError) as info:
        safe_loads(data, "contrast frame 0")
    # protocols 0 and 1 go through copyreg (named by its Python 2 name), refused first
    refused = f"{__name__}.Recorded" if protocol >= 2 else "copy_reg._reconstructor"
    assert f"refused pickle global '{refused}'" in str(info.value)
    assert Recorded.calls == []


def test_refused_module_is_not_imported():
    # ``this`` prints the Zen of Python when imported; refusing must not import it.
    if "this" in sys.modules:
        pytest.skip("'this' already imported")
    with pytest.raises(ParseError, match=r"'this\.s'"):
        safe_loads(b"cthis\ns\n.", "meta")
    assert "this" not in sys.modules


@pytest.mark.parametrize(
    "module, name",
    [
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("copyreg", "_reconstructor"),
        ("numpy", "load"),
        ("numpy.ma.core", "_mareconstruct"),
        ("numpy.lib.format", "read_array"),
        ("collections", "namedtuple"),
        ("pickle", "loads"),
        ("builtins", "exec"),
        ("builtins", "compile"),
        ("builtins", "open"),
        ("builtins", "type"),
        ("builtins", "object"),
        ("posix", "system"),
        ("nt", "system"),
        ("os", "popen"),
        ("subprocess", "check_output"),
        ("importlib", "import_module"),
        ("operator", "attrgetter"),
        ("functools", "partial"),
        ("types", "FunctionType"),
        ("runpy", "run_path"),
    ],
)
def test_other_globals_are_refused(module, name):
    with pytest.raises(ParseError, match=rf"refused pickle global '{module}\.{name}'"):
        safe_loads(f"c{module}\n{name}\n.".encode(), "meta")


def test_masked_array_is_refused():
    data = pickle.dumps(np.ma.masked_array([1, 2], mask=[0, 1]))
    with pytest.raises(ParseError, match=r"'numpy\.ma\.core\._mareconstruct'"):
        safe_loads(data, "meta")


# --- numpy states that would corrupt memory ---------------------------------------------------


class _Reduce:
    """Pickles as ``func(*args)`` with optional BUILD ``state``."""

    def __init__(self, func: Any, args: tuple[Any, ...], state: Any = None) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> Any:
        if self.state is None:
            return (self.func, self.args)
        return (self.func, self.args, self.state)


@pytest.mark.parametrize("protocol", [2, 4])
def test_object_array_with_short_list_is_refused(protocol):
    # numpy's own __setstate__ reads past the list here and crashes the interpreter
    evil = _Reduce(
        _multiarray._reconstruct,
        (np.ndarray, (0,), b"b"),
        (1, (3,), np.dtype("O"), False, []),
    )
    with pytest.raises(ParseError, match="object dtype"):
        safe_loads(pickle.dumps(evil, protocol=protocol), "meta")


def test_object_arrays_are_refused():
    with pytest.raises(ParseError, match="object dtype"):
        safe_loads(pickle.dumps(np.array([1, "x"], dtype=object)), "meta")


def test_structured_dtype_with_object_field_is_refused():
    with pytest.raises(ParseError, match="object"):
        safe_loads(pickle.dumps(np.zeros(1, dtype=[("a", "O")])), "meta")


def test_forged_dtype_flags_are_ignored():
    # 63 marks a dtype as holding object references; for float64 that would make numpy treat
    # floats as pointers
    forged = _Reduce(np.dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 63))
    result = safe_loads(pickle.dumps(forged), "meta")
    assert result == np.dtype("<f8")
    assert not result.hasobject


def test_forged_field_table_is_refused():
    state = (3, "|", None, ("a",), {"a": ("O", 0)}, 8, 1, 0)
    forged = _Reduce(np.dtype, ("V8", False, True), state)
    with pytest.raises(ParseError, match="field 'a'"):
        safe_loads(pickle.dumps(forged), "meta")


def test_array_data_of_wrong_length_is_refused():
    state = (1, (4,), np.dtype("f8"), False, b"\x00" * 8)
    evil = _Reduce(_multiarray._reconstruct, (np.ndarray, (0,), b"b"), state)
    with pytest.raises(ParseError, match="8 bytes, expected 32"):
        safe_loads(pickle.dumps(evil), "meta")


def test_calling_ndarray_directly_is_refused():
    # ndarray((10**9,), "O") would allocate and fill gigabytes
    with pytest.raises(ParseError, match="numpy.ndarray may only be named"):
        safe_loads(pickle.dumps(_Reduce(np.ndarray, ((10**9,), "f8"))), "meta")


def test_reconstruct_of_other_type_is_refused():
    evil = _Reduce(_multiarray._reconstruct, (collections.OrderedDict, (0,), b"b"))
    with pytest.raises(ParseError, match="only build numpy.ndarray"):
        safe_loads(pickle.dumps(evil), "meta")


def test_bytes_of_an_int_is_refused():
    # bytes(10**10) would allocate ten gigabytes of zeros
    with pytest.raises(ParseError, match="builtins.bytes"):
        safe_loads(b"c__builtin__\nbytes\n(I10000000000\ntR.", "meta")


def test_codecs_encode_only_latin1():
    with pytest.raises(ParseError, match="_codecs.encode"):
        safe_loads(b"c_codecs\nencode\n(Vabc\nVzlib\ntR.", "meta")


def test_array_without_state_is_refused():
    with pytest.raises(ParseError, match="without its state"):
        safe_loads(pickle.dumps(_Reduce(_multiarray._reconstruct, (np.ndarray, (0,), b"b"))), "m")


def test_array_as_dict_key_is_refused():
    # arrays are unhashable; the stand-in must be too
    data = (
        b"\x80\x02}(cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
        b"K\x01u."
    )
    with pytest.raises(ParseError, match="unhashable"):
        safe_loads(data, "meta")


# --- malformed input ---------------------------------------------------------------------------


def test_every_truncation_of_a_capture_pickle_is_a_parse_error():
    data = capture_pickles("xspress3-multipart.cbors")[0]
    for end in range(1, len(data)):
        with pytest.raises(ParseError) as info:
            safe_loads(data[:end], "xspress image frame=0: frame 2 (meta pickle)")
        assert str(info.value).startswith("xspress image frame=0: frame 2 (meta pickle): ")


def test_truncated_pickle_message():
    data = pickle.dumps({"status": "heartbeat"}, protocol=4)
    with pytest.raises(ParseError, match=r"contrast frame 0: pickle is truncated") as info:
        safe_loads(data[:-5], "contrast frame 0")
    assert info.value.__cause__ is not None


def test_empty_input():
    with pytest.raises(ParseError, match="meta: empty frame, expected a pickle"):
        safe_loads(b"", "meta")


def test_trailing_bytes():
    with pytest.raises(ParseError, match="3 bytes follow the end of the pickle"):
        safe_loads(pickle.dumps([1]) + b"xyz", "meta")


def test_not_bytes():
    with pytest.raises(ParseError, match="got a str, expected bytes"):
        safe_loads("not bytes", "meta")  # type: ignore[arg-type]


def test_garbage_opcode():
    with pytest.raises(ParseError, match="meta: not a valid pickle") as info:
        safe_loads(b"\x80\x04\xff.", "meta")
    assert isinstance(info.value.__cause__, pickle.UnpicklingError)


def test_persistent_id_is_refused():
    with pytest.raises(ParseError, match="persistent ids"):
        safe_loads(b"Pabc\n.", "meta")


def test_out_of_band_buffer_is_refused():
    array = np.arange(3)
    data = pickle.dumps(array, protocol=5, buffer_callback=lambda buf: False)
    with pytest.raises(ParseError, match="meta: not a valid pickle"):
        safe_loads(data, "meta")


def test_deep_nesting_is_a_parse_error():
    depth = 100_000
    data = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
    with pytest.raises(ParseError, match="nested too deeply"):
        safe_loads(data, "meta")


def test_datetime_objects_are_not_plain_data():
    with pytest.raises(ParseError, match=r"'datetime\.datetime'"):
        safe_loads(pickle.dumps(datetime.datetime(2024, 1, 1)), "meta")

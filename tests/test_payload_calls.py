"""Payload methods are called as their signatures accept."""

import pytest

from dranspose.core.payload import LenientCall, PayloadError, import_class, instantiate

OFFER = ["event", "parameters", "tick"]


class Recorder:
    def __init__(self):
        self.calls = []


def call(func):
    return LenientCall(func, OFFER)("EV", "PARAMS", True)


def test_all_keywords_named():
    def f(event, parameters, tick):
        return (event, parameters, tick)

    assert call(f) == ("EV", "PARAMS", True)


def test_keyword_only_parameters_after_varargs():
    def f(event, *args, parameters=None, **kwargs):
        return (event, args, parameters, kwargs)

    assert call(f) == ("EV", (), "PARAMS", {"tick": True})


def test_fewer_arguments():
    def f(event):
        return event

    assert call(f) == "EV"


def test_other_names_by_position():
    def f(ev, p, t):
        return (ev, p, t)

    assert call(f) == ("EV", "PARAMS", True)


def test_skips_an_argument_not_asked_for():
    def f(event, tick):
        return (event, tick)

    assert call(f) == ("EV", True)


def test_varargs_only():
    def f(event, *args):
        return (event, args)

    assert call(f) == ("EV", ("PARAMS", True))


def test_kwargs_only_after_event():
    def f(event, **kwargs):
        return (event, kwargs)

    assert call(f) == ("EV", {"parameters": "PARAMS", "tick": True})


def test_required_argument_we_cannot_provide_is_a_clear_error():
    def f(event, parameters, calibration):
        return event

    with pytest.raises(PayloadError, match="calibration"):
        LenientCall(f, OFFER)


def test_constructor_gets_only_what_it_accepts():
    class A:
        def __init__(self):
            self.ok = True

    class B:
        def __init__(self, parameters=None, state=None):
            self.parameters, self.state = parameters, state

    class C:
        def __init__(self, *args, **kwargs):
            self.kwargs = kwargs

    assert instantiate(A, parameters=1, context={}, state=2).ok
    b = instantiate(B, parameters=1, context={}, state=2)
    assert (b.parameters, b.state) == (1, 2)
    assert instantiate(C, parameters=1, context={}, state=2).kwargs == {
        "parameters": 1,
        "context": {},
        "state": 2,
    }


def test_import_class_from_current_directory(tmp_path, monkeypatch):
    pkg = tmp_path / "mypayload_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "worker.py").write_text("class W:\n    pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_class("mypayload_pkg.worker:W").__name__ == "W"


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("nocolon", "module.path:ClassName"),
        ("no_such_module_xyz:W", "not found"),
        ("json:NoSuchClass", "has no 'NoSuchClass'"),
        ("json:dumps", "not a class"),
    ],
)
def test_import_class_errors(spec, fragment):
    with pytest.raises(PayloadError, match=fragment):
        import_class(spec)


def test_constructor_exception_names_the_class_and_cause():
    from dranspose.core.payload import PayloadInitError

    class Broken:
        def __init__(self):
            raise ImportError("pyFAI is missing: pip install -e '.[examples]'")

    with pytest.raises(PayloadInitError, match="Broken.*ImportError: pyFAI is missing"):
        instantiate(Broken, parameters=None)

"""The original dranspose 0.2.0's public Python surface, walked mechanically against ours.

``tests/data/original-0.2.0.json`` (copied from ``../shared/api``; its README says how it was made)
lists every public name of the modules payloads, sources and clients import, with each model's
fields, each method's and function's parameters and each enum's members. A call that works on the
original must work on ours: the name importable from the same module, a model constructible with
the original's fields (no field the original defaulted becomes required, none we add is required),
every method and function accepting the same calls (same keyword names, same positions, no new
required parameter, static and class methods still callable on the class), enum members equal.

Every difference is collected and reported at once. An intended difference belongs in ``ALLOWED``
with its reason (and in docs/payload-api.md, "Compatibility").
"""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

SURFACE = json.loads((Path(__file__).parent / "data" / "original-0.2.0.json").read_text())

# (module, name, detail) -> reason. The original's one quirk: its InternalWorkerMessage.created_at
# default is the import time of the module (evaluated once); ours is the construction time.
ALLOWED: dict[tuple[str, str, str], str] = {
    (
        "dranspose.event",
        "InternalWorkerMessage",
        "field created_at: default",
    ): "the original evaluates its default once, at import; ours stamps each message when built",
}

POK = inspect.Parameter.POSITIONAL_OR_KEYWORD
POS_ONLY = inspect.Parameter.POSITIONAL_ONLY
KW_ONLY = inspect.Parameter.KEYWORD_ONLY
VAR_POS = inspect.Parameter.VAR_POSITIONAL
VAR_KW = inspect.Parameter.VAR_KEYWORD


def _accepts(original: list[list[Any]], ours: inspect.Signature) -> list[str]:
    """What a call the original accepted would meet in ``ours``; empty when every call works."""
    problems = []
    params = list(ours.parameters.values())
    has_var_pos = any(p.kind is VAR_POS for p in params)
    has_var_kw = any(p.kind is VAR_KW for p in params)
    positional = [p for p in params if p.kind in (POS_ONLY, POK)]
    by_name = {p.name: p for p in params if p.kind in (POK, KW_ONLY)}
    used: set[str] = set()
    for index, (name, kind, default) in enumerate(original):
        if kind == "VAR_POSITIONAL":
            if not has_var_pos:
                problems.append(f"*{name} no longer accepted")
            continue
        if kind == "VAR_KEYWORD":
            if not has_var_kw:
                problems.append(f"**{name} no longer accepted")
            continue
        if kind in ("POSITIONAL_OR_KEYWORD", "POSITIONAL_ONLY"):
            # the same position must take it (unless ours takes *args)
            if index < len(positional):
                if kind == "POSITIONAL_OR_KEYWORD" and positional[index].name != name:
                    problems.append(
                        f"position {index} is '{positional[index].name}', the original's '{name}'"
                    )
            elif not has_var_pos:
                problems.append(f"'{name}' no longer accepted by position {index}")
        if kind in ("POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY"):
            if name in by_name:
                used.add(name)
                if default is not None and by_name[name].default is inspect.Parameter.empty:
                    problems.append(f"'{name}' had a default ({default}) and is now required")
            elif not has_var_kw:
                problems.append(f"keyword '{name}' no longer accepted")
        elif kind == "POSITIONAL_ONLY" and index < len(positional):
            used.add(positional[index].name)
            if default is not None and positional[index].default is inspect.Parameter.empty:
                problems.append(f"'{name}' had a default ({default}) and is now required")
    original_names = {name for name, _, _ in original}
    for index, param in enumerate(params):
        if param.kind in (VAR_POS, VAR_KW) or param.name in used or param.name in original_names:
            continue
        if param.default is inspect.Parameter.empty:
            if param.kind in (POS_ONLY, POK) and index < len(original):
                continue  # same position, renamed: reported above
            problems.append(f"new required parameter '{param.name}'")
    return problems


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def _check_callable(where: str, obj: Any, original: list[list[Any]], out: list[str]) -> None:
    if not callable(obj):
        out.append(f"{where}: not callable")
        return
    sig = _signature(obj)
    if sig is None:
        return  # a builtin without a signature: callable, nothing more to compare
    out.extend(f"{where}: {p}" for p in _accepts(original, sig))


def _check_method(module: str, cls: type, name: str, spec: Any, out: list[str]) -> None:
    where = f"{module}.{cls.__name__}.{name}"
    if not hasattr(cls, name):
        out.append(f"{where}: missing")
        return
    if spec == "property":
        attr = inspect.getattr_static(cls, name)
        if not isinstance(attr, property) and not hasattr(attr, "__get__"):
            out.append(f"{where}: not a property")
        return
    first = spec[0][0] if spec else None
    raw = inspect.getattr_static(cls, name)
    if first == "self":
        if isinstance(raw, (staticmethod, classmethod)):
            out.append(f"{where}: was an instance method")
            return
        _check_callable(where, getattr(cls, name), spec, out)
    elif first == "cls":
        # bound to the class: the call drops cls
        _check_callable(where + " (on the class)", getattr(cls, name), spec[1:], out)
    else:
        # a static method: called on the class with the same arguments (ours may be a
        # descriptor that also binds to an instance; the signature on the class decides)
        _check_callable(where + " (on the class)", getattr(cls, name), spec, out)


def _same_kind(ours: str, original: str) -> bool:
    """Two reprs of values of one kind: literals of one type, or one constructor (``UUID(...)``)."""
    try:
        return type(ast.literal_eval(ours)) is type(ast.literal_eval(original))
    except (ValueError, SyntaxError):
        return ours.split("(", 1)[0] == original.split("(", 1)[0] and "(" in ours


def _check_model(module: str, name: str, cls: type, entry: dict[str, Any], out: list[str]) -> None:
    where = f"{module}.{name}"
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        out.append(f"{where}: not a pydantic model")
        return
    ours = cls.model_fields
    for field, spec in entry["fields"].items():
        if field not in ours:
            alias = {f.alias: n for n, f in ours.items() if f.alias}
            if field not in alias:
                out.append(f"{where}: field {field}: missing")
                continue
            field = alias[field]
        info = ours[field]
        if not spec["required"] and info.is_required():
            out.append(f"{where}: field {field}: the original defaulted it, ours requires it")
        elif not spec["required"] and spec["default"] is not None:
            default = info.get_default(call_default_factory=True)
            if info.default_factory is not None and _same_kind(repr(default), spec["default"]):
                pass  # a fresh id or time per model on both sides: the recorded value is one draw
            elif repr(default) != spec["default"]:
                out.append(
                    f"{where}: field {field}: default {default!r}, the original's {spec['default']}"
                )
        elif spec["required"] and not info.is_required():
            pass  # defaulting what the original required accepts every call it accepted
    for field, info in ours.items():
        names = {field, info.alias}
        if not names & set(entry["fields"]) and info.is_required():
            out.append(f"{where}: field {field}: new and required")
    if entry.get("extra") == "allow" and cls.model_config.get("extra") != "allow":
        out.append(f"{where}: extra fields no longer allowed (the original's extra='allow')")


def _check_entry(module: str, mod: Any, name: str, entry: dict[str, Any], out: list[str]) -> None:
    where = f"{module}.{name}"
    if not hasattr(mod, name):
        out.append(f"{where}: missing")
        return
    obj = getattr(mod, name)
    kind = entry["kind"]
    if kind == "function":
        _check_callable(where, obj, entry["signature"], out)
    elif kind == "class":
        if not isinstance(obj, type):
            out.append(f"{where}: not a class")
            return
        if "members" in entry:
            if not issubclass(obj, enum.Enum):
                out.append(f"{where}: not an enum")
                return
            ours = {m.name: str(m.value) for m in obj}
            for member, value in entry["members"].items():
                if member not in ours:
                    out.append(f"{where}: member {member}: missing")
                elif repr(obj[member].value) != value and ours[member] != value:
                    out.append(f"{where}: member {member} = {ours[member]}, the original's {value}")
        if entry.get("pydantic"):
            _check_model(module, name, obj, entry, out)
        for method, spec in entry.get("methods", {}).items():
            _check_method(module, obj, method, spec, out)
    elif kind == "value" and entry.get("type") == "TypeAdapter":
        if not (hasattr(obj, "validate_python") and hasattr(obj, "validate_json")):
            out.append(f"{where}: not a TypeAdapter (validate_python/validate_json)")
    elif kind == "callable" and entry.get("type") == "NewType" and not callable(obj):
        out.append(f"{where}: not callable (a NewType)")


def _differences(module: str) -> list[str]:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        return [f"{module}: not importable ({exc})"]
    out: list[str] = []
    for name, entry in SURFACE[module].items():
        _check_entry(module, mod, name, entry, out)
    return out


def _allowed(line: str) -> bool:
    return any(line.startswith(f"{module}.{name}: {detail}") for module, name, detail in ALLOWED)


def test_every_module_of_the_original_is_walked():
    assert len(SURFACE) >= 20, "the recording lost modules"
    assert sum(len(names) for names in SURFACE.values()) >= 140


@pytest.mark.parametrize("module", sorted(SURFACE))
def test_surface_matches_the_original(module):
    differences = [line for line in _differences(module) if not _allowed(line)]
    assert not differences, f"{len(differences)} difference(s):\n" + "\n".join(differences)


def test_the_whole_surface_at_once():
    """One report of every difference across all modules (the per-module tests say the same)."""
    differences = [
        line for module in sorted(SURFACE) for line in _differences(module) if not _allowed(line)
    ]
    assert not differences, f"{len(differences)} difference(s):\n" + "\n".join(differences)


def test_the_walker_finds_differences():
    """The walker itself: a stand-in module that drifts in each way is reported for each."""

    class Model(BaseModel):
        a: int
        b: str  # the original defaulted it

        @staticmethod
        def stat(x: int, y: int) -> None: ...

        def meth(self, renamed: int) -> None: ...

        def was_static(self, by: bytes) -> None: ...

    class Mod:
        pass

    Mod.Model = Model  # type: ignore[attr-defined]
    entry = {
        "kind": "class",
        "pydantic": True,
        "extra": "allow",
        "fields": {
            "a": {"required": True, "default": None},
            "b": {"required": False, "default": "'x'"},
            "c": {"required": False, "default": "None"},
        },
        "methods": {
            "stat": [["x", "POSITIONAL_OR_KEYWORD", None]],
            "meth": [
                ["self", "POSITIONAL_OR_KEYWORD", None],
                ["data", "POSITIONAL_OR_KEYWORD", None],
            ],
            "gone": [["self", "POSITIONAL_OR_KEYWORD", None]],
            "was_static": [["by", "POSITIONAL_OR_KEYWORD", None]],
        },
    }
    out: list[str] = []
    _check_entry("m", Mod, "Model", entry, out)
    joined = "\n".join(out)
    for expected in (
        "field b: the original defaulted it",
        "field c: missing",
        "extra fields no longer allowed",
        "stat (on the class): new required parameter 'y'",
        "was_static (on the class): position 0 is 'self', the original's 'by'",
        "meth: position 1 is 'renamed'",
        "gone: missing",
    ):
        assert expected in joined, (expected, joined)
    out = []
    _check_entry("m", Mod, "absent", {"kind": "function", "signature": []}, out)
    assert out == ["m.absent: missing"]

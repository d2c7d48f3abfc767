"""Loading user payload classes and calling their methods leniently.

Payloads are small classes written by beamline scientists over several releases. Their methods take
whatever subset of our arguments they care about, by position or by keyword
(``process_event(self, event)``, ``process_event(self, event, parameters=None)``,
``process_event(self, event, *args, parameters=None, **kwargs)``). :class:`LenientCall` inspects a
method's signature once and derives how to pass each offered argument, so the per-event call is a
plain call with precomputed positions and keywords.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from typing import Any, Callable, Optional, Sequence


class PayloadError(Exception):
    """A payload class cannot be loaded or does not have the shape we need."""


def import_class(spec: str | type, cwd: Optional[str] = None) -> type:
    """Import ``"package.module:ClassName"``, looking in the current directory first.

    Payload folders are laid out as ``src/worker.py``; users run commands from the folder root,
    so ``src.worker:TestWorker`` must resolve against the working directory.
    """
    if isinstance(spec, type):
        return spec
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise PayloadError(f"class {spec!r}: expected 'module.path:ClassName'")
    module_name, class_name = spec.split(":")
    if not module_name or not class_name:
        raise PayloadError(f"class {spec!r}: expected 'module.path:ClassName'")
    base = os.path.abspath(cwd or os.getcwd())
    if base not in sys.path:
        sys.path.insert(0, base)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise PayloadError(
                f"class {spec!r}: module {module_name!r} not found (searched {base} and sys.path)"
            ) from exc
        raise
    try:
        cls = getattr(module, class_name)
    except AttributeError as exc:
        raise PayloadError(f"class {spec!r}: module {module_name!r} has no {class_name!r}") from exc
    if not isinstance(cls, type):
        raise PayloadError(f"class {spec!r}: {class_name!r} is not a class")
    return cls


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class LenientCall:
    """Calls ``func`` with the subset of the offered arguments its signature accepts.

    ``offered`` lists argument names in their conventional order. The first one is passed by
    position when ``first_positional`` is true (the event/result). The others go by keyword when
    the function names them (so ``*args, parameters=None`` gets ``parameters`` as a keyword), by
    position into unnamed positional slots in order (``def f(self, ev, p)``), into ``**kwargs``,
    or are dropped when the function has no place for them.
    """

    def __init__(
        self, func: Callable[..., Any], offered: Sequence[str], first_positional: bool = True
    ) -> None:
        self.func = func
        self.offered = list(offered)
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):  # builtins without a signature: pass everything by position
            self._positional = list(range(len(self.offered)))
            self._keywords: list[tuple[str, int]] = []
            self._leading: Optional[int] = len(self.offered)
            return
        slots = [p.name for p in params if p.kind in _POSITIONAL]
        named = {p.name for p in params if p.kind in _NAMED}
        var_pos = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)

        positional: list[int] = []
        keywords: list[tuple[str, int]] = []
        slot = 0
        for index, name in enumerate(self.offered):
            contiguous = len(positional) == index
            if index == 0 and first_positional and (slots or var_pos):
                positional.append(index)
                slot = 1
            elif name in named and not (slot > 0 and name in slots[:slot]):
                keywords.append((name, index))
            elif contiguous and slot < len(slots) and slots[slot] not in self.offered:
                positional.append(index)
                slot += 1
            elif contiguous and slot >= len(slots) and var_pos and not var_kw:
                positional.append(index)
            elif var_kw:
                keywords.append((name, index))
        self._positional = positional
        self._keywords = keywords
        self._leading = None
        """With no keywords and the first N offered values by position: N (a slice and a call,
        per event, instead of building the arguments)."""
        if not keywords and positional == list(range(len(positional))):
            self._leading = len(positional)

        passed = {name for name, _ in keywords} | set(slots[: len(positional)])
        missing = [
            p.name
            for p in params
            if p.default is inspect.Parameter.empty
            and p.kind in (*_POSITIONAL, inspect.Parameter.KEYWORD_ONLY)
            and p.name not in passed
        ]
        if missing:
            owner = getattr(func, "__qualname__", repr(func))
            raise PayloadError(
                f"{owner}{inspect.signature(func)} requires {', '.join(missing)}, which dranspose "
                f"does not provide (it offers {', '.join(self.offered)})"
            )

    def __call__(self, *values: Any) -> Any:
        if self._leading is not None:
            return self.func(*values[: self._leading])
        args = [values[i] for i in self._positional]
        kwargs = {name: values[i] for name, i in self._keywords}
        return self.func(*args, **kwargs)


def optional_method(
    obj: Any, name: str, offered: Sequence[str], first_positional: bool = True
) -> Optional[LenientCall]:
    """A :class:`LenientCall` for ``obj.name`` if the payload defines it, else ``None``."""
    method = getattr(obj, name, None)
    if method is None or not callable(method):
        return None
    return LenientCall(method, offered, first_positional)


class PayloadInitError(PayloadError):
    """The payload's own ``__init__`` raised; the cause carries the payload traceback."""


def instantiate(cls: type, **offered: Any) -> Any:
    """Construct a payload class, passing only the keyword arguments its ``__init__`` accepts."""
    call = LenientCall(cls, list(offered), first_positional=False)
    try:
        return call(*offered.values())
    except Exception as exc:
        where = "".join(traceback.format_exception(exc)[-3:]).rstrip()
        raise PayloadInitError(
            f"{cls.__module__}:{cls.__qualname__}() raised {type(exc).__name__}: {exc}\n{where}"
        ) from exc


class WorkerPayload:
    """A user worker instance with its methods bound for lenient calls."""

    def __init__(self, cls: type, parameters: Any, context: dict, state: Any) -> None:
        self.instance = instantiate(cls, parameters=parameters, context=context, state=state)
        self.process_event = optional_method(
            self.instance, "process_event", ["event", "parameters", "tick"]
        )
        if self.process_event is None:
            raise PayloadError(f"worker class {cls.__qualname__} has no process_event method")
        self.finish = optional_method(self.instance, "finish", ["parameters"])
        self.get_tick_interval = optional_method(self.instance, "get_tick_interval", ["parameters"])


class ReducerPayload:
    """A user reducer instance with its methods bound for lenient calls."""

    def __init__(self, cls: type, parameters: Any, context: dict, state: Any) -> None:
        self.instance = instantiate(cls, parameters=parameters, context=context, state=state)
        self.process_result = optional_method(
            self.instance, "process_result", ["result", "parameters"]
        )
        if self.process_result is None:
            raise PayloadError(f"reducer class {cls.__qualname__} has no process_result method")
        self.finish = optional_method(self.instance, "finish", ["parameters"])
        self.timer = optional_method(self.instance, "timer", ["parameters"])

"""The ``publish`` tree over h5grove's HTTP API, for the H5Web viewer (``/viewer/``).

H5Web reads files through `h5grove <https://github.com/silx-kit/h5grove>`_'s endpoints
(``/meta``, ``/attr``, ``/data``, ``/paths``); h5grove's own backends read HDF5 files with
h5py. This router answers the same requests from the live ``publish`` tree instead, so the
viewer shows exactly what the HDF REST API (:mod:`dranspose.http.h5rest`) serves: the tree
rules (which keys are groups, datasets or attributes) and the conversion of a value to an
array in its wire dtype come from :mod:`~dranspose.http.h5rest.tree` and
:mod:`~dranspose.http.h5rest.values`, and every read holds the same lock (the reducer's
``publish_rlock``) while it copies only what it answers (one selection, never the tree).

What comes from h5grove itself: the answers' shapes (:mod:`h5grove.models`), the type
metadata (``get_type_metadata`` of the h5py type of the wire dtype), the selection syntax
(``parse_slice``), ``dtype=safe`` (``convert``) and the encoders
(``format=json|bin|npy|csv|tiff``). Errors answer 4xx with ``{"message": ..., "detail": ...}``: H5Web
shows ``message``; ``detail`` is what the rest of this API (and its bad-input tests) uses.

``GET /h5grove/version`` answers ``{"version": "..."}``, a token that changes whenever the
reducer ran ``process_result``, ``timer`` or ``finish`` (or a new scan started); the viewer
polls it and re-reads only when it changed. The ``file`` parameter is accepted and ignored:
there is one tree.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, Callable, ContextManager, Optional

import h5py
import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response
from h5grove.encoders import encode
from h5grove.utils import (
    QueryArgumentError,
    convert,
    get_array_stats,
    get_type_metadata,
    parse_bool_arg,
    parse_slice,
    sorted_dict,
)

from dranspose.http.h5rest.routes import MAX_SELECTION_BYTES
from dranspose.http.h5rest.tree import Path, Published, attributes, members, walk
from dranspose.http.h5rest.types import VLEN_STR
from dranspose.http.h5rest.values import Data, as_data

__all__ = ["H5GroveError", "create_h5grove_router", "publish_version"]

FILE_NAME = "publish"
"""The name the viewer shows for the tree's root (the ``file`` parameter is ignored)."""


class H5GroveError(Exception):
    """An answer other than 200: status and message (h5grove's ``H5GroveException`` shape)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _encoded(content: Any, encoding: Optional[str] = "json", status: int = 200) -> Response:
    if (
        encoding == "bin"
        and isinstance(content, np.ndarray)
        and content.dtype.kind in "biufc"
        and content.flags.c_contiguous
    ):
        # the selection was copied out under the lock already: send that buffer as it is
        # (h5grove's bin encoder would copy it once more with tobytes)
        body = content.data.cast("B") if content.size else b""
        return Response(body, status_code=status, media_type="application/octet-stream")
    try:
        out = encode(content, encoding)
    except QueryArgumentError as exc:
        raise H5GroveError(422, str(exc)) from None
    return Response(out.content, status_code=status, headers=out.headers)


def _error_response(exc: H5GroveError) -> Response:
    return _encoded({"message": exc.message, "detail": exc.message}, status=exc.status_code)


def publish_version(host: Any) -> str:
    """A token that changes when the reducer may have changed ``publish``.

    The count of ``process_result``/``timer``/``finish`` calls the host's
    :class:`~dranspose.core.calling.ReducerCalls` made, with the serial of that object (a new
    scan gets a new one); ``"none"`` before the first scan.
    """
    calls = getattr(host, "calls", None)
    if calls is None:
        return "none"
    return f"{getattr(calls, 'serial', 0)}.{getattr(calls, 'changes', 0)}"


def _tree_path(path: Optional[str]) -> Path:
    return tuple(part for part in (path or "/").split("/") if part)


def _h5_path(path: Path) -> str:
    return "/" + "/".join(path)


@functools.lru_cache(maxsize=256)
def _type_metadata(wire: np.dtype) -> dict[str, Any]:
    """h5grove's type metadata of the h5py type of a wire dtype (strings: UTF-8, vlen)."""
    dt = h5py.string_dtype("utf-8") if wire == VLEN_STR else wire
    return dict(get_type_metadata(h5py.h5t.py_create(dt, logical=True)))


def _check_selection(text: str, shape: tuple[int, ...]) -> tuple[Any, ...]:
    """h5grove's numpy-style selection, checked against ``shape`` before the tree is indexed."""
    try:
        index = parse_slice(text)
    except (ValueError, TypeError) as exc:
        raise H5GroveError(422, f"bad selection {text!r}: {exc}") from None
    if len(index) > len(shape):
        raise H5GroveError(
            422, f"selection {text!r} has {len(index)} members, the dataset has {len(shape)} dims"
        )
    for d, (part, extent) in enumerate(zip(index, shape)):
        if isinstance(part, int) and not -extent <= part < extent:
            raise H5GroveError(
                422, f"index {part} out of range for dimension {d} of extent {extent}"
            )
        if isinstance(part, slice) and part.step is not None and part.step < 1:
            raise H5GroveError(422, f"step {part.step} of dimension {d} must be at least 1")
    return index


def _selected_size(shape: tuple[int, ...], index: Any) -> int:
    """Elements a selection picks, found on a zero-stride view (nothing is copied)."""
    view = np.broadcast_to(np.zeros((), np.uint8), shape)
    return math.prod(view[index].shape) if index is not None else math.prod(shape)


class _Tree(Published):
    """The tree and its lock, read the h5grove way."""

    def node(self, tree: Any, path: Path) -> Any:
        try:
            return walk(tree, path)
        except KeyError:
            raise H5GroveError(
                404, f"{_h5_path(path)} is not a valid path in {FILE_NAME}"
            ) from None

    def attr_meta(self, tree: Any, path: Path, node: Any) -> list[dict[str, Any]]:
        out = []
        for name, value in attributes(tree, path, node):
            data = as_data(value)
            out.append({"name": name, "shape": data.shape, "type": _type_metadata(data.wire)})
        return out

    def entity(self, tree: Any, path: Path, node: Any, depth: int) -> dict[str, Any]:
        """h5grove's metadata of a group (children down to ``depth``) or a dataset."""
        common = [
            ("attributes", self.attr_meta(tree, path, node)),
            ("name", path[-1] if path else ""),
        ]
        if isinstance(node, Mapping):
            if depth <= 0:
                return sorted_dict(("kind", "group"), *common)
            children = [
                self.entity(tree, path + (name,), value, depth - 1)
                for name, _, value in members(node)
            ]
            return sorted_dict(("kind", "group"), ("children", children), *common)
        data = as_data(node)
        return sorted_dict(
            ("kind", "dataset"),
            ("chunks", None),
            ("filters", None),
            ("shape", data.shape),
            ("type", _type_metadata(data.wire)),
            *common,
        )

    def meta(self, path: Path) -> dict[str, Any]:
        with self.lock():
            tree = self.root()
            return self.entity(tree, path, self.node(tree, path), depth=1)

    def attrs(self, path: Path, keys: Optional[list[str]]) -> dict[str, Any]:
        with self.lock():
            tree = self.root()
            found = {
                name: _plain(as_data(value).copy_out())
                for name, value in attributes(tree, path, self.node(tree, path))
            }
        if keys is None:
            return found
        missing = [k for k in keys if k not in found]
        if missing:
            raise H5GroveError(404, f"{_h5_path(path)} has no attribute {missing[0]!r}")
        return {k: found[k] for k in keys}

    def data(self, path: Path, selection: Optional[str]) -> tuple[np.ndarray, Data]:
        """A copy of the selection in the wire dtype (only the selection is copied)."""
        with self.lock():
            node = self.node(self.root(), path)
            if isinstance(node, Mapping):
                raise H5GroveError(422, f"{_h5_path(path)} is not a dataset")
            data = as_data(node)
            index = None if selection is None else _check_selection(selection, data.shape)
            nbytes = _selected_size(data.shape, index) * data.item_bytes
            if nbytes > self.max_selection_bytes:
                raise H5GroveError(
                    413,
                    f"the selection is {nbytes} bytes, more than the limit of "
                    f"{self.max_selection_bytes} bytes; read it in smaller slices",
                )
            return data.copy_out(index), data

    def paths(self, path: Path) -> list[str]:
        with self.lock():
            node = self.node(self.root(), path)
            if not isinstance(node, Mapping):
                raise H5GroveError(422, f"{_h5_path(path)} is not a group")
            out = [_h5_path(path)]
            self._visit(node, path, out)
        return out

    def _visit(self, group: Mapping[Any, Any], path: Path, out: list[str]) -> None:
        for name, _, value in members(group):
            out.append(_h5_path(path + (name,)))
            if isinstance(value, Mapping):
                self._visit(value, path + (name,), out)


def _plain(arr: np.ndarray) -> Any:
    """A 0-d array as its scalar (as h5py reads a scalar), any other array as it is."""
    return arr[()] if arr.ndim == 0 else arr


def _answer(make: Callable[[], Response]) -> Response:
    """The answer ``make`` builds, or the 4xx its :class:`H5GroveError` says."""
    try:
        return make()
    except H5GroveError as exc:
        return _error_response(exc)


def _route(
    router: APIRouter, name: str
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Serve ``/h5grove/<name>`` and ``/h5grove/<name>/`` (H5Web asks without a slash)."""

    def register(func: Callable[..., Response]) -> Callable[..., Response]:
        router.add_api_route(f"/{name}/", func, methods=["GET"], name=f"h5grove_{name}")
        router.add_api_route(f"/{name}", func, methods=["GET"], include_in_schema=False)
        return func

    return register


def create_h5grove_router(
    get_tree: Callable[[], Any],
    get_lock: Callable[[], ContextManager[Any]],
    get_version: Callable[[], str] = lambda: "none",
    max_selection_bytes: int = MAX_SELECTION_BYTES,
) -> APIRouter:
    """h5grove's endpoints over ``get_tree()`` under ``/h5grove``, read under ``get_lock()``."""
    router = APIRouter(prefix="/h5grove", tags=["h5grove"])
    tree = _Tree(get_tree, get_lock, max_selection_bytes)

    @router.get("/")
    def get_root() -> Response:
        """h5grove's status check."""
        return Response("ok")

    # the same check by HEAD, out of the schema (one operation may not serve two methods there)
    router.add_api_route("/", get_root, methods=["HEAD"], include_in_schema=False)

    @router.get("/version")
    def get_version_route() -> Response:
        """A token that changes whenever ``publish`` may have changed (poll it, re-read on change)."""
        return _encoded({"version": get_version()})

    _entity_routes(router, tree)
    _value_routes(router, tree)
    return router


def _entity_routes(router: APIRouter, tree: _Tree) -> None:
    """``meta``, ``attr`` and ``paths``: what the viewer's tree and its Inspect tab read."""

    @_route(router, "meta")
    def get_meta(
        file: str = FILE_NAME, path: str = "/", resolve_links: str = "only_valid"
    ) -> Response:
        """A group (with its children) or a dataset: kind, name, attributes, shape, type."""
        return _answer(lambda: _encoded(tree.meta(_tree_path(path))))

    @_route(router, "attr")
    def get_attr(
        file: str = FILE_NAME, path: str = "/", attr_keys: Optional[list[str]] = Query(None)
    ) -> Response:
        """The attribute values of an entity (all, or those named by ``attr_keys``)."""
        return _answer(lambda: _encoded(tree.attrs(_tree_path(path), attr_keys)))

    @_route(router, "paths")
    def get_paths(
        file: str = FILE_NAME, path: str = "/", resolve_links: str = "only_valid"
    ) -> Response:
        """Every path below ``path`` (itself first), depth first: what the viewer searches."""
        return _answer(lambda: _encoded(tree.paths(_tree_path(path))))


def _value_routes(router: APIRouter, tree: _Tree) -> None:
    """``data`` and ``stats``: a dataset's values, copied out under the lock."""

    @_route(router, "data")
    def get_data(
        file: str = FILE_NAME,
        path: str = "/",
        dtype: str = "origin",
        format: str = "json",
        flatten: str = "false",
        selection: Optional[str] = None,
    ) -> Response:
        """A dataset's value or a numpy-style ``selection`` of it (e.g. ``0,:,10:20``).

        ``format``: json, bin (C-order bytes), npy, csv or tiff; ``dtype=safe`` converts to a
        type JavaScript has a typed array for.
        """

        def make() -> Response:
            arr, _ = tree.data(_tree_path(path), selection)
            try:
                arr = convert(arr, dtype)
            except QueryArgumentError as exc:
                raise H5GroveError(422, str(exc)) from None
            if parse_bool_arg(flatten, fallback=False):
                arr = np.ravel(arr)
            return _encoded(_plain(arr), format)

        return _answer(make)

    @_route(router, "stats")
    def get_stats(
        file: str = FILE_NAME, path: str = "/", selection: Optional[str] = None
    ) -> Response:
        """min, max, mean, std and the smallest (strictly) positive value of the finite values."""

        def make() -> Response:
            arr, data = tree.data(_tree_path(path), selection)
            if data.vlen or arr.dtype.kind not in "biuf":
                raise H5GroveError(422, "statistics need a numeric dataset")
            if arr.dtype.kind == "f":
                arr = arr[np.isfinite(arr)]
            return _encoded(get_array_stats(np.asarray(arr)))

        return _answer(make)

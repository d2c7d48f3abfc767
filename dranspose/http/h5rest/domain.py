"""What the routes answer, read from the live tree under the publish lock.

:class:`Domain` holds what one router shares between requests (the tree and lock getters, the
id cache, the start time) and builds the JSON of groups, links, datasets and attributes. Each
method takes the lock once and copies what it needs, so a reader never sees a half-updated
tree and the (slow) serialisation runs after the lock is released.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Callable, ContextManager, Optional

import numpy as np
from fastapi import HTTPException

from dranspose.http.h5rest.ids import Ids
from dranspose.http.h5rest.selections import SelectError, Selection, parse_points, parse_select
from dranspose.http.h5rest.tree import Path, Published, attributes, iter_tree, kind_of, members
from dranspose.http.h5rest.types import chunks, shape_json, type_json
from dranspose.http.h5rest.values import Data, as_data, fill_json, jsonable
from dranspose.http.h5rest.web import flag

__all__ = ["Domain"]


def dataset_json(node: Any, verbose: bool) -> dict[str, Any]:
    """Type, shape and layout of a dataset (and its size with ``verbose``)."""
    data = as_data(node)
    shape = data.shape
    if shape:
        layout = {"class": "H5D_CHUNKED", "dims": chunks(shape, data.item_bytes)}
    else:
        layout = {"class": "H5D_CONTIGUOUS"}
    cpl: dict[str, Any] = {"layout": layout}
    fill = fill_json(data)
    if fill is not None:
        cpl["fillValue"] = fill
    out: dict[str, Any] = {
        "type": type_json(data.wire),
        "shape": shape_json(shape, resizable=bool(shape)),
        "layout": layout,
        "creationProperties": cpl,
    }
    if verbose:
        out.update(num_chunks=0, allocated_size=data.nbytes)
    return out


class Domain(Published):
    """The published tree of one router as an HDF5 domain."""

    def __init__(
        self,
        get_tree: Callable[[], Any],
        get_lock: Callable[[], ContextManager[Any]],
        max_selection_bytes: int,
    ) -> None:
        super().__init__(get_tree, get_lock, max_selection_bytes)
        self.ids = Ids()
        self.started = time.time()
        self.root_id = self.ids.make("g", ())

    def stamps(self) -> dict[str, float]:
        return {"created": self.started, "lastModified": time.time()}

    def links_of(self, path: Path, group: Mapping[Any, Any]) -> list[dict[str, Any]]:
        links = []
        for position, (name, _, value) in enumerate(members(group)):
            kind = kind_of(value)
            links.append(
                {
                    "class": "H5L_TYPE_HARD",
                    "id": self.ids.make(kind, path + (name,)),
                    "title": name,
                    "collection": "groups" if kind == "g" else "datasets",
                    # creation order is insertion order (h5pyd 1.x sorts by it)
                    "created": self.started + position * 1e-3,
                }
            )
        return links

    def attrs_of(self, tree: Any, path: Path, node: Any, with_data: bool) -> list[dict[str, Any]]:
        attrs = []
        for position, (name, value) in enumerate(attributes(tree, path, node)):
            data = as_data(value)
            attr: dict[str, Any] = {
                "name": name,
                "type": type_json(data.wire),
                "shape": shape_json(data.shape, resizable=False),
                "created": self.started + position * 1e-3,
                "lastModified": time.time(),
            }
            if with_data:
                attr["value"] = jsonable(data.copy_out().tolist())
            attrs.append(attr)
        return attrs

    def object_json(self, kind: str, obj_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        """A group or dataset with the h5pyd options include_links, include_attrs, getalias."""
        include_attrs = flag(params.get("include_attrs"))
        with self.lock():
            tree = self.root()
            path, node = self.ids.resolve(tree, obj_id, kind)
            attrs = self.attrs_of(tree, path, node, with_data=include_attrs)
            out: dict[str, Any] = {"id": obj_id, "root": self.root_id}
            out["domain"] = params.get("domain", "/")
            if kind == "g":
                links = self.links_of(path, node)
                out.update(linkCount=len(links), creationProperties={"CreateOrder": 1})
                if flag(params.get("include_links")):
                    out["links"] = {link["title"]: link for link in links}
            else:
                out.update(dataset_json(node, flag(params.get("verbose"))))
        out.update(attributeCount=len(attrs), hrefs=[], **self.stamps())
        if include_attrs:
            out["attributes"] = {attr["name"]: attr for attr in attrs}
        if flag(params.get("getalias")):
            out["alias"] = ["/" + "/".join(path)]
        return out

    def domain_json(self, params: Mapping[str, str]) -> dict[str, Any]:
        """The domain: its root group id (and object counts with ``verbose``)."""
        out: dict[str, Any] = {
            "root": self.root_id,
            "class": "domain",
            "owner": "dranspose",
            "domain": params.get("domain", "/"),
            "limits": {"max_request_size": self.max_selection_bytes},
            "compressors": [],
            "version": "dranspose-h5rest/1",
            "hrefs": [],
            **self.stamps(),
        }
        if flag(params.get("verbose")):
            out.update(self._counts())
        return out

    def _counts(self) -> dict[str, int]:
        groups = datasets = size = 0
        with self.lock():
            for _, node in iter_tree(self.root()):
                if isinstance(node, Mapping):
                    groups += 1
                else:
                    datasets += 1
                    size += as_data(node).nbytes
        return {
            "num_groups": groups,
            "num_datasets": datasets,
            "num_datatypes": 0,
            "num_objects": groups + datasets,
            "num_chunks": 0,
            "num_linked_chunks": 0,
            "allocated_bytes": size,
            "metadata_bytes": 0,
            "linked_bytes": 0,
            "total_size": size,
        }

    def group_links(self, obj_id: str) -> list[dict[str, Any]]:
        with self.lock():
            path, node = self.ids.resolve(self.root(), obj_id, "g")
            return self.links_of(path, node)

    def attribute_list(self, kind: str, obj_id: str, with_data: bool) -> list[dict[str, Any]]:
        with self.lock():
            tree = self.root()
            path, node = self.ids.resolve(tree, obj_id, kind)
            return self.attrs_of(tree, path, node, with_data)

    def dataset(self, obj_id: str) -> Data:
        with self.lock():
            return as_data(self.ids.resolve(self.root(), obj_id, "d")[1])

    def _selection(self, data: Data, select: Optional[str], points: Any) -> Selection:
        """The checked selection; 400 when it does not fit, 413 when it is too large."""
        try:
            if points is not None:
                sel = parse_points(points, data.shape)
            else:
                sel = parse_select(select, data.shape)
        except SelectError as exc:
            raise HTTPException(400, f"bad selection: {exc}") from None
        nbytes = sel.size * data.item_bytes
        if nbytes > self.max_selection_bytes:
            raise HTTPException(
                413,
                f"the selection is {nbytes} bytes, more than the limit of "
                f"{self.max_selection_bytes} bytes; read it in smaller slices",
            )
        return sel

    def read_value(
        self, obj_id: str, select: Optional[str], points: Any = None
    ) -> tuple[np.ndarray, bool]:
        """(a copy of the selection in the wire dtype, whether it holds strings)."""
        with self.lock():
            data = as_data(self.ids.resolve(self.root(), obj_id, "d")[1])
            sel = self._selection(data, select, points)
            out = data.copy_out(sel.index if data.shape else None)
        if sel.squeeze:
            out = out.reshape([n for d, n in enumerate(out.shape) if d not in sel.squeeze])
        return out, data.vlen

"""Stable object ids: ``g-``/``d-`` and a UUID-formatted hash of the object's path.

h5pyd 1.x rejects ids that are not UUID-shaped, so a reversible encoding of the path does not
fit; instead an id is found again from a bounded cache of the ids handed out, or else by
walking the tree. Ids therefore stay valid across server restarts and no id table has to
follow the changes of the tree.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from typing import Any

from fastapi import HTTPException

from dranspose.http.h5rest.tree import Path, iter_tree, kind_of, walk

__all__ = ["ID_CACHE_SIZE", "Ids", "path_token"]

#: How many handed-out ids are remembered (older ones are found by a walk of the tree).
ID_CACHE_SIZE = 65536

_ID_RE = re.compile(r"([gdt])-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_KIND_NAME = {"g": "group", "d": "dataset", "t": "datatype"}


def path_token(path: Path) -> str:
    """A 128-bit hash of the member names, formatted like a UUID."""
    digest = hashlib.blake2b(
        json.dumps(list(path), ensure_ascii=False).encode("utf-8"), digest_size=16
    ).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


class Ids:
    """Path -> id, and back via the ids handed out lately or a walk of the tree."""

    def __init__(self) -> None:
        self._paths: OrderedDict[str, Path] = OrderedDict()
        self._lock = threading.Lock()

    def make(self, kind: str, path: Path) -> str:
        """The id of the ``kind`` ('g' or 'd') object at ``path``, remembered for resolve."""
        token = path_token(path)
        with self._lock:
            self._paths[token] = path
            self._paths.move_to_end(token)
            if len(self._paths) > ID_CACHE_SIZE:
                self._paths.popitem(last=False)
        return f"{kind}-{token}"

    def _cached(self, tree: Any, token: str, kind: str) -> tuple[Path, Any] | None:
        with self._lock:
            path = self._paths.get(token)
        if path is None:
            return None
        try:
            node = walk(tree, path)
        except KeyError:
            return None
        if node is not None and kind_of(node) == kind:
            return path, node
        return None

    def resolve(self, tree: Any, obj_id: str, kind: str) -> tuple[Path, Any]:
        """(path, node) of a ``kind`` ('g' or 'd') id; HTTPException 404 when there is none."""
        match = _ID_RE.fullmatch(obj_id)
        if not match or match.group(1) != kind:
            raise HTTPException(404, f"{obj_id!r} is not a {_KIND_NAME[kind]} id of this domain")
        token = match.group(2)
        found = self._cached(tree, token, kind)
        if found is not None:
            return found
        for path, node in iter_tree(tree):
            if kind_of(node) == kind and path_token(path) == token:
                self.make(kind, path)
                return path, node
        raise HTTPException(
            404, f"no {_KIND_NAME[kind]} with id {obj_id!r} (removed from the published tree?)"
        )

"""The ``publish`` dict seen as HDF5 groups, datasets and attributes.

The naming rules (which keys are listed, which hold attributes, see the package docs) live
only here, so a link listing, a lookup by name and an id walk always agree on what a group
holds. The functions only read the tree; callers hold the publish lock while they run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, ContextManager, Iterator

__all__ = ["Path", "attributes", "child", "iter_tree", "kind_of", "members", "walk"]

#: The member names from the root to an object; ``()`` is the root group.
Path = tuple[str, ...]

_ATTRS_KEY = "_attrs"
_ATTRS_SUFFIX = "_attrs"


def _valid_name(name: str) -> bool:
    return bool(name) and "/" not in name and name not in (".", "..")


def _has_key_named(group: Mapping[Any, Any], name: str) -> bool:
    return name in group or any(str(k) == name for k in group if not isinstance(k, str))


def _is_attrs_key(group: Mapping[Any, Any], key: Any, value: Any) -> bool:
    """Whether ``key`` holds attributes: ``_attrs``, or ``<name>_attrs`` next to ``<name>``."""
    if not isinstance(key, str) or not isinstance(value, Mapping):
        return False
    if key == _ATTRS_KEY:
        return True
    base = key[: -len(_ATTRS_SUFFIX)]
    return key.endswith(_ATTRS_SUFFIX) and bool(base) and _has_key_named(group, base)


def members(group: Mapping[Any, Any]) -> Iterator[tuple[str, Any, Any]]:
    """The listed members, in insertion order: (name, key, value)."""
    seen: set[str] = set()
    for key, value in list(group.items()):  # a copy: readers may run without a lock
        if value is None or _is_attrs_key(group, key, value):
            continue
        if isinstance(key, str):
            name = key
        else:
            name = str(key)
            if name in group:  # a string key of that name wins
                continue
        if name in seen or not _valid_name(name):
            continue
        seen.add(name)
        yield name, key, value


def child(group: Mapping[Any, Any], name: str) -> tuple[Any, Any]:
    """(key, value) of the member listed as ``name``; KeyError when there is none."""
    if name in group:
        value = group[name]
        if value is not None and _valid_name(name) and not _is_attrs_key(group, name, value):
            return name, value
        raise KeyError(name)
    for member, key, value in members(group):
        if member == name:
            return key, value
    raise KeyError(name)


def walk(tree: Any, path: Path) -> Any:
    """The node at ``path``; KeyError when some name on the way is not listed."""
    node = tree
    for name in path:
        if not isinstance(node, Mapping):
            raise KeyError(name)
        node = child(node, name)[1]
    return node


def attributes(tree: Any, path: Path, node: Any) -> list[tuple[str, Any]]:
    """The attributes of the object at ``path`` (``node``), in insertion order."""
    merged: dict[str, Any] = {}
    if isinstance(node, Mapping):
        inner = node.get(_ATTRS_KEY)
        if isinstance(inner, Mapping):
            merged.update((str(k), v) for k, v in list(inner.items()))
    if path:
        parent = walk(tree, path[:-1])
        key, _ = child(parent, path[-1])
        sibling = parent.get(f"{key}{_ATTRS_SUFFIX}")
        if isinstance(sibling, Mapping):
            merged.update((str(k), v) for k, v in list(sibling.items()))
    return [
        (name, value)
        for name, value in merged.items()
        if value is not None and not isinstance(value, Mapping) and _valid_name(name)
    ]


def kind_of(node: Any) -> str:
    """``"g"`` for a group (any Mapping), ``"d"`` for a dataset: the id prefix."""
    return "g" if isinstance(node, Mapping) else "d"


def iter_tree(tree: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every listed object below ``tree`` (itself first), depth first, with its path."""
    yield path, tree
    if isinstance(tree, Mapping):
        for name, _, value in members(tree):
            yield from iter_tree(value, path + (name,))


class Published:
    """The ``publish`` tree of a reducer and the lock it is read under, as every HTTP view of it
    (the HDF REST domain, h5grove) reads it: ``root()`` is the tree's root group, an empty one
    while nothing is published; ``lock()`` is held while values are copied out."""

    def __init__(
        self,
        get_tree: Callable[[], Any],
        get_lock: Callable[[], ContextManager[Any]],
        max_selection_bytes: int,
    ) -> None:
        self._get_tree = get_tree
        self.lock = get_lock
        self.max_selection_bytes = max_selection_bytes

    def root(self) -> Any:
        tree = self._get_tree()
        return tree if isinstance(tree, Mapping) else {}

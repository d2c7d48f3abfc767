"""HDF REST selections: the ``select=[...]`` text and point lists, as numpy indices.

Everything a client may send is checked here, before the tree is indexed, so a bad selection
answers 400 with the reason instead of numpy's wrap-around of negative indices or a silently
clipped slice: the dataset may have changed since the client read its shape.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

__all__ = ["FlatPoints", "SelectError", "Selection", "parse_points", "parse_select"]


class SelectError(ValueError):
    """A selection that does not fit the dataset; the message says why."""


@dataclass
class Selection:
    """A checked selection: the numpy index, its element count, the dimensions to drop."""

    index: tuple[Any, ...]
    size: int
    squeeze: tuple[int, ...] = ()  # dimensions selected by a single index


@dataclass
class FlatPoints:
    """Binary point coordinates: ``rank`` uint64 values per point."""

    coords: np.ndarray


def _split_top(text: str) -> list[str]:
    """Split at commas outside brackets."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise SelectError("unbalanced ']'")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise SelectError("unbalanced '['")
    parts.append("".join(current))
    return parts


def _parse_int(text: str, what: str) -> int:
    text = text.strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise SelectError(f"{what} {text!r} is not an integer")
    value = int(text)
    if value < 0:
        raise SelectError(f"{what} {value} is negative (negative indices are not supported)")
    return value


def _list_text(part: str, d: int) -> str:
    """The inside of the coordinate list ``[i,j,k]`` of dimension ``d``."""
    if not part.endswith("]") or not part[1:-1].strip():
        raise SelectError(f"coordinate list {part!r} of dimension {d} is malformed")
    return part[1:-1]


def _coordinates(inner: str, d: int, extent: int) -> np.ndarray:
    """The coordinates ``i,j,k`` of dimension ``d``."""
    what = f"coordinate of dimension {d}"
    coords = [_parse_int(c, what) for c in inner.split(",")]
    bad = [c for c in coords if c >= extent]
    if bad:
        raise SelectError(f"coordinate {bad[0]} out of range for dimension {d} of extent {extent}")
    return np.array(coords, dtype=np.intp)


def _slice(part: str, d: int, extent: int) -> slice:
    """``start:stop[:step]`` in dimension ``d`` (``start``/``stop`` may be left out)."""
    fields = part.split(":")
    if len(fields) > 3:
        raise SelectError(f"{part!r} of dimension {d} has more than start:stop:step")
    start = _parse_int(fields[0], "start") if fields[0].strip() else 0
    stop = _parse_int(fields[1], "stop") if fields[1].strip() else extent
    step = 1
    if len(fields) == 3 and fields[2].strip():
        step = _parse_int(fields[2], "step")
        if step < 1:
            raise SelectError(f"step {step} of dimension {d} must be at least 1")
    if stop > extent or start > stop:
        raise SelectError(
            f"{start}:{stop} out of range for dimension {d} of extent {extent}"
            " (did the dataset change? re-read its shape)"
        )
    return slice(start, stop, step)


def _dimensions(text: Optional[str], rank: int) -> list[str]:
    """The text of each dimension of a non-empty ``select``."""
    stripped = (text or "").strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        raise SelectError(f"select {text!r} must look like [start:stop:step,...]")
    inner = stripped[1:-1]
    dims = _split_top(inner) if inner.strip() else []
    if len(dims) != rank:
        raise SelectError(f"select {text!r} has {len(dims)} dimensions, the dataset has {rank}")
    return [part.strip() for part in dims]


def parse_select(text: Optional[str], shape: tuple[int, ...]) -> Selection:
    """Parse an HDF REST ``select`` for a dataset of ``shape``; SelectError says what is wrong."""
    if not (text or "").strip():
        return Selection(tuple(slice(0, n) for n in shape), math.prod(shape))
    if not shape:
        raise SelectError(f"select {text!r} given for a scalar dataset, which takes none")
    index: list[Any] = []
    size = 1
    squeeze: list[int] = []
    lists = 0
    for d, (part, extent) in enumerate(zip(_dimensions(text, len(shape)), shape)):
        if part.startswith("["):
            inner = _list_text(part, d)
            lists += 1
            if lists > 1:
                raise SelectError("only one coordinate list per selection is supported")
            coords = _coordinates(inner, d, extent)
            index.append(coords)
            size *= len(coords)
        elif ":" in part:
            dim = _slice(part, d, extent)
            index.append(dim)
            size *= len(range(dim.start, dim.stop, dim.step))
        else:
            i = _parse_int(part, f"index of dimension {d}")
            if i >= extent:
                raise SelectError(f"index {i} out of range for dimension {d} of extent {extent}")
            index.append(slice(i, i + 1))
            squeeze.append(d)
    return Selection(tuple(index), size, tuple(squeeze))


def _point_array(points: Any, rank: int) -> np.ndarray:
    """The points as an integer array (binary ones reshaped to one row per point)."""
    if isinstance(points, FlatPoints):
        if points.coords.size % rank:
            raise SelectError(f"{points.coords.size} coordinates are no whole {rank}-d points")
        if points.coords.size and points.coords.max() >= 2**62:
            raise SelectError("point coordinates out of range")
        points = points.coords.astype(np.int64).reshape(-1, rank)
    try:
        pts = np.asarray(points)
    except (ValueError, TypeError) as exc:
        raise SelectError(f"points are malformed: {exc}") from None
    if pts.size == 0:
        raise SelectError("no points given")
    if pts.dtype.kind not in "iu":
        raise SelectError("points must be integers")
    return pts


def parse_points(points: Any, shape: tuple[int, ...]) -> Selection:
    """A point selection (JSON lists or :class:`FlatPoints`) for a dataset of ``shape``."""
    rank = len(shape)
    if rank == 0:
        raise SelectError("point selections need a dataset with at least one dimension")
    pts = _point_array(points, rank)
    if pts.ndim == 1 and rank == 1:
        pts = pts.reshape(-1, 1)
    elif pts.ndim == 1 and pts.shape[0] == rank:
        pts = pts.reshape(1, rank)
    if pts.ndim != 2 or pts.shape[1] != rank:
        raise SelectError(f"points must be a list of {rank}-coordinate points")
    if (pts < 0).any():
        raise SelectError("negative point coordinates are not supported")
    for d in range(rank):
        if (pts[:, d] >= shape[d]).any():
            raise SelectError(f"a point is out of range in dimension {d} of extent {shape[d]}")
    return Selection(tuple(pts[:, d].astype(np.intp) for d in range(rank)), len(pts))

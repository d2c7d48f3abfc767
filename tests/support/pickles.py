"""The shipped pickle captures decoded without dranspose: plain cbor2 and a minimal unpickler."""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any

import cbor2
import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data"

try:
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]

# The only globals the shipped captures name, checked by
# tests/test_safe_pickle.py::test_captures_name_only_these_globals.
CAPTURE_GLOBALS = {
    ("_codecs", "encode"): __import__("_codecs").encode,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
}


class _ReferenceUnpickler(pickle.Unpickler):
    """A second, minimal decoder for the shipped captures: numpy's own reconstructors, and
    nothing else. Fine for these known files; not safe for arbitrary network data."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return CAPTURE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"reference decoder: {module}.{name}") from None


def reference_loads(data: bytes) -> Any:
    """Decode a capture pickle independently of dranspose."""
    return _ReferenceUnpickler(io.BytesIO(data)).load()


def raw_items(name: str) -> list[list[bytes]]:
    """The frames of each recorded message, decoded with plain cbor2."""
    items = []
    with open(DATA / name, "rb") as fh:
        decoder = cbor2.CBORDecoder(fh)
        while fh.peek(1):
            items.append([bytes(frame) for frame in decoder.decode()])
    return items

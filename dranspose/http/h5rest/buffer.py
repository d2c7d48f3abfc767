"""GrowingBuffer: the array a payload fills row by row, published as one h5rest dataset.

It lives here rather than with the router because payloads import it on its own (as
``dranspose.http.h5rest.GrowingBuffer``) to build their ``publish`` tree, and the value
conversion (:mod:`dranspose.http.h5rest.values`) needs to know it to send its fill value.
"""

from __future__ import annotations

import operator
from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["GrowingBuffer"]


class GrowingBuffer:
    """A sequence of rows that grows as rows arrive in any order, served as one dataset.

    ``buf[event_number] = row`` stores a row of shape ``row_shape`` at that index, growing the
    storage as needed (the capacity at least doubles, so appending costs amortised O(1)).
    Rows never written read as ``fill_value``: NaN for float and complex dtypes, ``False`` for
    bool, empty for strings and 0 otherwise, unless one is given. ``len(buf)``, ``buf.shape``,
    ``buf.array`` and ``numpy.asarray(buf)`` cover the rows ``0 .. highest index written``.
    Slices with an explicit, non-negative stop also assign (``buf[4:8] = rows``).

    ``buf.array`` is a view of the storage: it sees later writes to its rows, not rows added
    beyond it, and keeps the old storage alive after a growth. Assign under the payload's
    ``publish_rlock`` like any other change of the published tree.

    >>> buf = GrowingBuffer(np.float64, row_shape=(2,))
    >>> buf[3] = [1.0, 2.0]
    >>> buf.shape
    (4, 2)
    """

    def __init__(
        self,
        dtype: Any = np.float64,
        row_shape: Sequence[int] | int = (),
        fill_value: Any = None,
        capacity: int = 16,
    ) -> None:
        self._dtype = np.dtype(dtype)
        if isinstance(row_shape, (int, np.integer)):
            row_shape = (int(row_shape),)
        self._row_shape = tuple(operator.index(n) for n in row_shape)
        if any(n < 0 for n in self._row_shape):
            raise ValueError(f"negative row_shape {self._row_shape}")
        if fill_value is None:
            kind = self._dtype.kind
            if kind in "fc":
                fill_value = np.nan
            elif kind == "b":
                fill_value = False
            elif kind in "SU":
                fill_value = ""
            else:
                fill_value = 0
        self._fill = np.array(fill_value, dtype=self._dtype)  # fails early if it does not fit
        self._data = self._new_storage(max(1, int(capacity)))
        self._length = 0

    def _new_storage(self, capacity: int) -> np.ndarray:
        return np.full((capacity,) + self._row_shape, self._fill, dtype=self._dtype)

    def _reserve(self, length: int) -> None:
        capacity = self._data.shape[0]
        if length > capacity:
            new = self._new_storage(max(length, 2 * capacity))
            new[: self._length] = self._data[: self._length]
            self._data = new

    def __setitem__(self, index: Any, value: Any) -> None:
        if isinstance(index, slice):
            if index.stop is None:
                raise IndexError("GrowingBuffer slices need an explicit stop")
            start = operator.index(index.start or 0)
            stop = operator.index(index.stop)
            step = operator.index(index.step or 1)
            if start < 0 or stop < 0 or step < 1:
                raise IndexError("GrowingBuffer takes non-negative indices and positive steps")
            rows = range(start, stop, step)
            end = rows[-1] + 1 if rows else 0
        else:
            index = operator.index(index)
            if index < 0:
                raise IndexError(f"GrowingBuffer index {index} is negative")
            end = index + 1
        self._reserve(end)
        self._data[index] = value
        self._length = max(self._length, end)

    def __getitem__(self, index: Any) -> Any:
        return self.array[index]

    def __len__(self) -> int:
        return self._length

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray:
        arr = self.array
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            return arr.astype(dtype)
        return arr.copy() if copy else arr

    @property
    def array(self) -> np.ndarray:
        """The rows ``0 .. highest index written`` (a view of the storage)."""
        return self._data[: self._length]

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._length,) + self._row_shape

    @property
    def ndim(self) -> int:
        return 1 + len(self._row_shape)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def row_shape(self) -> tuple[int, ...]:
        return self._row_shape

    @property
    def fill_value(self) -> Any:
        return self._fill[()]

    @property
    def capacity(self) -> int:
        return self._data.shape[0]

    def clear(self) -> None:
        """Forget every row (the storage is kept and refilled with the fill value)."""
        self._data[: self._length] = self._fill
        self._length = 0

    def __repr__(self) -> str:
        return f"GrowingBuffer(shape={self.shape}, dtype={self._dtype}, capacity={self.capacity})"

"""A set of event numbers kept as sorted disjoint ranges.

The controller's account of a scan must know which of up to ten million events are settled.
Events complete roughly in order, so as ranges the account holds a few entries per gap instead of
one Python int per event (about 60 bytes each, half a gigabyte for 10^7). Pure code, no I/O.
"""

from __future__ import annotations

import bisect
from typing import Iterator, Optional


class RangeSet:
    """Non-negative integers as half-open ranges ``[start, end)``, sorted and never touching."""

    __slots__ = ("_count", "_ends", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int):
            return False
        index = bisect.bisect_right(self._starts, number) - 1
        return index >= 0 and number < self._ends[index]

    def add(self, number: int) -> bool:
        """Add ``number``; False if it was there already."""
        starts, ends = self._starts, self._ends
        index = bisect.bisect_right(starts, number) - 1
        if index >= 0 and number < ends[index]:
            return False
        joins_left = index >= 0 and ends[index] == number
        joins_right = index + 1 < len(starts) and starts[index + 1] == number + 1
        if joins_left and joins_right:  # fills the gap between two ranges
            ends[index] = ends[index + 1]
            del starts[index + 1], ends[index + 1]
        elif joins_left:
            ends[index] = number + 1
        elif joins_right:
            starts[index + 1] = number
        else:
            starts.insert(index + 1, number)
            ends.insert(index + 1, number + 1)
        self._count += 1
        return True

    def add_range(self, start: int, end: int) -> None:
        """Add every number of ``[start, end)``, none of which may be in the set yet (the
        assigner adds the events it releases, each once)."""
        if start >= end:
            return
        starts, ends = self._starts, self._ends
        index = bisect.bisect_right(starts, start) - 1
        if (index >= 0 and start < ends[index]) or (
            index + 1 < len(starts) and starts[index + 1] < end
        ):
            raise ValueError(f"[{start}, {end}) overlaps numbers already in the set")
        joins_left = index >= 0 and ends[index] == start
        joins_right = index + 1 < len(starts) and starts[index + 1] == end
        if joins_left and joins_right:
            ends[index] = ends[index + 1]
            del starts[index + 1], ends[index + 1]
        elif joins_left:
            ends[index] = end
        elif joins_right:
            starts[index + 1] = start
        else:
            starts.insert(index + 1, start)
            ends.insert(index + 1, end)
        self._count += end - start

    def discard(self, number: int) -> bool:
        """Remove ``number``; False if it was not there. Removing the smallest member (events
        complete roughly in order) costs no search."""
        starts, ends = self._starts, self._ends
        if starts and starts[0] == number:
            index = 0
        else:
            index = bisect.bisect_right(starts, number) - 1
            if index < 0 or number >= ends[index]:
                return False
        start, end = starts[index], ends[index]
        if number == start:
            if start + 1 == end:
                del starts[index], ends[index]
            else:
                starts[index] = start + 1
        elif number == end - 1:
            ends[index] = number
        else:  # splits its range in two
            ends[index] = number
            starts.insert(index + 1, number + 1)
            ends.insert(index + 1, end)
        self._count -= 1
        return True

    def first(self) -> Optional[int]:
        """The smallest member (None if the set is empty)."""
        return self._starts[0] if self._starts else None

    def __iter__(self) -> Iterator[int]:
        """The members in increasing order."""
        for start, end in zip(list(self._starts), list(self._ends)):
            yield from range(start, end)

    def first_missing(self) -> int:
        """The smallest non-negative number not in the set."""
        if self._starts and self._starts[0] == 0:
            return self._ends[0]
        return 0

    def missing(self, total: int) -> Iterator[tuple[int, int]]:
        """The inclusive ranges ``(first, last)`` of ``range(total)`` not in the set."""
        position = 0
        for start, end in zip(self._starts, self._ends):
            if start >= total:
                break
            if start > position:
                yield position, start - 1
            position = max(position, end)
        if position < total:
            yield position, total - 1

    def spans(self) -> Iterator[tuple[int, int]]:
        """The members as inclusive ranges ``(first, last)``, in increasing order."""
        for start, end in zip(list(self._starts), list(self._ends)):
            yield start, end - 1

    @property
    def ranges(self) -> int:
        """How many disjoint ranges the set holds (its memory is proportional to this)."""
        return len(self._starts)

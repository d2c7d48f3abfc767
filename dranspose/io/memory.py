"""Process-wide allocator tuning for components that move large frames.

glibc serves every allocation above its mmap threshold (128 KiB at start) with a fresh ``mmap``
and returns it with ``munmap`` when freed. A component that receives a 2 MB detector frame per
event therefore maps, page-faults and zeroes 2 MB of new memory per event, which on a busy
2-core machine costs more than the copy itself (measured: a 4 MB numpy copy took ~7 ms with fresh
pages and ~0.2 ms with reused heap memory). Raising the mmap and trim thresholds keeps freed frame
buffers in the heap for the next frame. The price is that a process keeps its peak heap (bounded
by the frames in flight, which the data plane's high-water marks bound) instead of returning it
to the system between frames.

Set ``DRANSPOSE_MALLOC_TUNING=0`` to keep the allocator's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""Allocations up to this size come from the heap (32 MiB is glibc's largest allowed value)."""
TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024
"""Free memory at the top of the heap is returned to the system only above this size."""


def keep_large_buffers() -> bool:
    """Tune glibc's malloc to reuse large buffers; False where that is off or not glibc."""
    if os.environ.get("DRANSPOSE_MALLOC_TUNING", "1").strip().lower() in (
        "0",
        "false",
        "no",
        "off",
    ):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )

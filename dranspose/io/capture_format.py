"""What a capture file is, for its readers and writers alike: the CBOR tags of ingester dumps,
how a file's name picks its format, and :class:`CaptureError`, which every reader raises for a
damaged item (the layouts and the damage rules are described in :mod:`dranspose.io.capture`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Union

import cbor2
import zmq

__all__ = [
    "BUFFER_SIZE",
    "DATETIME_STRING_TAG",
    "MESSAGE_TAG",
    "STREAM_TAG",
    "CaptureError",
    "FrameLike",
    "PathLike",
    "describe",
    "format_suffix",
    "is_gzip_name",
    "is_map",
]

MESSAGE_TAG = 42877
"""CBOR tag of one ingester-dump item (a partial event)."""

STREAM_TAG = 42878
"""CBOR tag of one stream's data inside a partial event."""

DATETIME_STRING_TAG = 0
"""RFC 8949 tag of a date/time string; the original's later releases store ``created_at`` so."""

PathLike = Union[str, "os.PathLike[str]"]
FrameLike = Union[bytes, bytearray, memoryview, zmq.Frame]

BUFFER_SIZE = 1 << 16
"""Bytes read from, or written to, a capture file at a time."""
# The concrete map types cbor2 decodes to (frozendict from cbor2 6 on), checked before the much
# slower ``Mapping`` ABC test.
_MAP_TYPES = (dict, getattr(cbor2, "frozendict", dict))


class CaptureError(ValueError):
    """A capture file cannot be read past a certain item.

    ``index`` counts items from 0 and ``offset`` is the byte where the bad item starts in the
    uncompressed stream, so the damage can be inspected (or the file cut before it) directly.
    """

    def __init__(self, path: PathLike, index: int, offset: int, problem: str) -> None:
        self.path = os.fspath(path)
        self.index = index
        self.offset = offset
        self.problem = problem
        super().__init__(f"{self.path}: item {index} at byte {offset} {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        # The default reduction would call __init__ with only the message; replay workers may
        # send this error between processes, so it must survive pickling.
        return (type(self), (self.path, self.index, self.offset, self.problem))


def is_gzip_name(path: PathLike) -> bool:
    """Whether the name says the file is gzip-compressed (a ``.gz`` suffix, any case)."""
    return os.fspath(path).lower().endswith(".gz")


def format_suffix(path: PathLike) -> str:
    """The suffix that says how items are encoded, looking through a ``.gz`` layer."""
    name = os.path.basename(os.fspath(path)).lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    return os.path.splitext(name)[1]


def describe(value: Any) -> str:
    """Name a decoded value's kind the same way under every cbor2 version."""
    if isinstance(value, cbor2.CBORTag):
        return f"CBOR tag {value.tag}"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, Mapping):
        return "dict"
    if value is None:
        return "null"
    if value is cbor2.undefined:
        return "undefined"
    if value is getattr(cbor2, "break_marker", cbor2.undefined):
        return "a stray break code"
    return type(value).__name__


def is_map(value: Any) -> bool:
    """Whether a decoded value is a CBOR map, whichever type the cbor2 version decodes it to."""
    return type(value) in _MAP_TYPES or isinstance(value, Mapping)

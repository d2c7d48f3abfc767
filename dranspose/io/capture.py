"""Capture files: recorded streams that can be replayed offline, item by item.

Two layouts share the same container (a plain concatenation of CBOR items, optionally gzipped):

* an *ingester dump* holds one partial event per item, CBOR tag 42877 wrapping
  ``[event_number, {stream: tag 42878 wrapping [typ, [frame, ...]]}, created_at?]``;
  this is what :func:`read_capture` turns back into :class:`InternalWorkerMessage` objects.
  ``created_at`` is read in every form a release wrote (UNIX time, or a datetime: CBOR tag 0 or
  1) as UNIX time; untagged items and streams, and fields after the known ones, are accepted too
  (docs/capture-files.md lists the layouts);
* a *raw capture* holds, per item, the frames of one upstream ZMQ multipart message, before any
  protocol parsing; :func:`read_raw_capture` gives them back so parsers can be tested offline.

Captures of a long scan can be far larger than memory, so every reader decodes one item at a
time from the open file and never holds more than the current item. Damage is the normal case for
captures cut short by a crash or a full disk: everything before the damage is still delivered, and
the damage itself is reported as a :class:`CaptureError` saying which item and which byte, never
as a bare decoder traceback.

This module is the public face; the work is split by job: :mod:`dranspose.io.capture_format`
(tags, names, :class:`CaptureError`), :mod:`dranspose.io.capture_reader` (item-by-item decoding
and damage reports), :mod:`dranspose.io.capture_layouts` (what each release wrote) and
:mod:`dranspose.io.capture_writer`. Reading ``.pkls`` files stays here: it is the one place a
capture file is unpickled (docs/security.md).
"""

from __future__ import annotations

import pickle
from typing import Iterator

from dranspose.core.event import InternalWorkerMessage
from dranspose.io.capture_format import (
    DATETIME_STRING_TAG,
    MESSAGE_TAG,
    STREAM_TAG,
    CaptureError,
    FrameLike,
    PathLike,
)
from dranspose.io.capture_layouts import LayoutError, from_pickled, to_frames, to_message
from dranspose.io.capture_reader import decode_items, dump_decoder, open_for_reading, read_failure
from dranspose.io.capture_writer import CaptureWriter, RawCaptureWriter, write_capture

__all__ = [
    "DATETIME_STRING_TAG",
    "MESSAGE_TAG",
    "STREAM_TAG",
    "CaptureError",
    "CaptureWriter",
    "FrameLike",
    "PathLike",
    "RawCaptureWriter",
    "read_capture",
    "read_raw_capture",
    "write_capture",
]


def _unpickle_messages(path: PathLike) -> Iterator[InternalWorkerMessage]:
    with open_for_reading(path) as fp:
        index = 0
        while True:
            try:
                offset = fp.tell()
                if not fp.peek(1):
                    return
                message = pickle.load(fp)
            except OSError as exc:
                raise read_failure(path, index, offset, exc) from exc
            except EOFError as exc:
                raise CaptureError(
                    path, index, offset, "is truncated (file ends inside the pickle)"
                ) from exc
            except pickle.UnpicklingError as exc:
                problem = (
                    "is truncated (file ends inside the pickle)"
                    if "truncated" in str(exc)
                    else f"is not a valid pickle ({exc})"
                )
                raise CaptureError(path, index, offset, problem) from exc
            except Exception as exc:  # unpickling runs arbitrary constructors: anything can fail
                raise CaptureError(
                    path, index, offset, f"cannot be unpickled ({type(exc).__name__}: {exc})"
                ) from exc
            if not isinstance(message, InternalWorkerMessage):
                raise CaptureError(
                    path,
                    index,
                    offset,
                    f"is not an InternalWorkerMessage (got {type(message).__name__})",
                )
            try:
                message = from_pickled(message)
            except LayoutError as exc:
                raise CaptureError(
                    path, index, offset, f"is not a valid InternalWorkerMessage ({exc})"
                ) from None
            yield message
            index += 1


def _starts_with_a_pickle(path: PathLike) -> bool:
    """Whether the (decompressed) file starts with a pickle's protocol header (0x80, 2-5).

    No ingester-dump item starts so: a dump item is a tag (0xd9), an array of two or more fields
    (0x82...) or a map; 0x80 is CBOR's empty array, which no release wrote as an item.
    """
    with open_for_reading(path) as fp:
        try:
            head = fp.peek(2)[:2]
        except OSError as exc:
            raise read_failure(path, 0, 0, exc) from exc
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def read_capture(path: PathLike) -> Iterator[InternalWorkerMessage]:
    """Replay an ingester capture lazily, one partial event at a time, in file order.

    The content decides the format, not the name: pickled messages (the original's ``.pkls``)
    or an ingester dump in CBOR (``.cbors`` by convention, also what the original's deployments
    wrote under a ``.pkls`` name); a trailing ``.gz`` in the name adds decompression.

    Pickles are unpickled, which executes code chosen by whoever wrote the file. That is
    acceptable only for files the user names on their own machine; never route data received
    over the network, or from untrusted sources, through this function.

    The file is opened on the first ``next()``, so a missing file surfaces there as ``OSError``.
    Damage raises :class:`CaptureError` after every intact item before it has been yielded.
    """

    def items() -> Iterator[InternalWorkerMessage]:
        if _starts_with_a_pickle(path):
            yield from _unpickle_messages(path)
        else:
            yield from decode_items(path, to_message, dump_decoder)

    return items()


def read_raw_capture(path: PathLike) -> Iterator[list[bytes]]:
    """Replay a raw capture lazily: the frames of each recorded ZMQ multipart message, in order.

    Raw captures keep what a detector actually sent, so a protocol parser can be developed and
    tested against it without the detector. Compression and errors work as in
    :func:`read_capture`.
    """
    return decode_items(path, to_frames)

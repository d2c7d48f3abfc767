"""Where a replay's events come from: capture files and source classes, merged by event number.

Kept apart from :mod:`dranspose.tools.replay` (which runs the payload) because reading is the part
that must stay lazy: a capture of any size is read one message at a time, never held in memory.
"""

from __future__ import annotations

import heapq
import logging
import os
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

from dranspose.core.event import InternalWorkerMessage
from dranspose.core.payload import import_class, instantiate
from dranspose.io.capture import read_capture

# the name payload authors see in their replay output (and the tutorial shows)
logger = logging.getLogger("dranspose.replay")

PathLike = Union[str, "os.PathLike[str]"]


def merge_partials(
    sources: Sequence[Iterable[InternalWorkerMessage]],
) -> Iterator[list[InternalWorkerMessage]]:
    """Group the partial events of several sources (one per ingester) by event number.

    Each source is read lazily and in order, so memory stays constant whatever the capture size.
    A source whose numbers go backwards still has every message replayed (as separate events) and
    a warning says where; so has a stream that comes twice with one event number.
    """

    def checked(
        index: int, source: Iterable[InternalWorkerMessage]
    ) -> Iterator[InternalWorkerMessage]:
        last = None
        for message in source:
            if last is not None and message.event_number < last:
                logger.warning(
                    "source %d: event %d follows event %d; captures should be in event order",
                    index,
                    message.event_number,
                    last,
                )
            last = message.event_number
            yield message

    merged = heapq.merge(
        *(checked(i, s) for i, s in enumerate(sources)), key=lambda m: m.event_number
    )
    # The partials of the current event number. A stream that comes again under the same number
    # (sources of the original dranspose's era do that) starts a second event, which the other
    # streams' later partials of that number join in turn, as the original replay paired them.
    groups: list[list[InternalWorkerMessage]] = []
    names: list[set[str]] = []
    try:
        for partial in merged:
            if groups and partial.event_number != groups[0][0].event_number:
                yield from groups
                groups, names = [], []
            streams = partial.streams.keys()
            for group, seen in zip(groups, names):
                if not seen & streams:
                    group.append(partial)
                    seen.update(streams)
                    break
            else:
                if groups:
                    logger.warning(
                        "event %d: stream(s) %s arrived again with the same event number; "
                        "replaying them as a separate event",
                        partial.event_number,
                        ", ".join(sorted(names[-1] & streams)),
                    )
                groups.append([partial])
                names.append(set(streams))
    except Exception:
        # A source failed while we held complete earlier events: hand them out before the error.
        yield from groups
        raise
    yield from groups


def source_iterators(
    zmq_files: Optional[Sequence[PathLike]], source: Optional[Union[str, type, Any]]
) -> list[Iterable[InternalWorkerMessage]]:
    """One iterator per capture file and per generator of the source class, checked to open."""
    iterators: list[Iterable[InternalWorkerMessage]] = []
    if zmq_files:
        if isinstance(zmq_files, (str, os.PathLike)):
            zmq_files = [zmq_files]
        for path in zmq_files:
            open(path, "rb").close()  # a missing or unreadable file fails the setup, not the run
        iterators.extend(read_capture(path) for path in zmq_files)
    if source is not None:
        # a "module:Class" name or a class is instantiated; anything else is used as it is
        instance: Any = (
            instantiate(import_class(source)) if isinstance(source, (str, type)) else source
        )
        iterators.extend(instance.get_source_generators())
    if not iterators:
        raise ValueError("replay needs capture files (-f) or a source class (--source)")
    return iterators

"""The trigger map: which workers get which stream's frame in which event, and who takes what next.

A trigger map says, for every stream and every event, where that stream's frame goes:

* ``null``: the stream has no frame in this event (a slower stream skips events);
* ``[]``: the frame exists but is discarded;
* a list of virtual workers ``{"tags": [...], "constraint": c}``. Every place in the map that names
  the same constraint ``c`` is served by the same real worker, so frames of several streams, or of
  several events, meet in one process. A constraint is bound to a real worker that has all of its
  tags when that worker asks for work. ``"constraint": null`` broadcasts: every worker with the
  tags gets the frame. An empty tag list is satisfied by every worker.

Maps travel as a *sequence* so that long scans stay small on the wire: named parts (each a
``{stream: [entry, ...]}`` mapping) and the order to concatenate them in. Constraint numbers belong
to one occurrence of a part: a part repeated a thousand times describes a thousand different
bindings, not one worker doing everything. Occurrence ``k`` adds ``base_k`` to its constraints,
where ``base_k`` is the sum of ``largest constraint + 1`` over the occurrences before it; so ids
stay unique in the whole map however large the numbers users pick. The map gains a reserved first
event 0 and last event ``N + 1`` (the streams' start and end messages), which go to every worker on
every stream; the parts' events are ``1..N``.

The map is never expanded. :class:`TriggerMap` keeps the distinct parts once and the sequence as
runs of repeated parts with the first event and first constraint id of each run, so locating event
``e`` is a binary search over the runs and a ``divmod`` inside the run. A 10-million-event scan
costs memory proportional to its parts and to the runs of its sequence, not to its events.

:class:`Assigner` hands out events in batches as workers ask for them (faster workers ask more
often and so take more events) and releases them strictly in event order, which is the order the
ingesters read frames in.

The package has one module per job: :mod:`.request` (the pydantic schema, its checks and error
messages), :mod:`.compact` (the compiled map and its lookups), :mod:`.assigner` (binding and
release), :mod:`.shapes` (the event shapes the assigner shares between events) and
:mod:`.errors`. Every name is importable from ``dranspose.core.triggermap``.

Error messages name the part and the event as the user wrote them: ``event 3`` inside a part is the
fourth entry (0-based position) of that part's lists. Everything here is pure: no I/O, no clocks.
"""

from dranspose.core.triggermap.assigner import Assigner, Assignment
from dranspose.core.triggermap.compact import CompiledPart, TriggerMap
from dranspose.core.triggermap.errors import AssignmentError, TriggerMapError
from dranspose.core.triggermap.request import (
    GENERIC_TAGS,
    MappingPart,
    SequenceRequest,
    StreamEntry,
    VirtualWorker,
)

__all__ = [
    "GENERIC_TAGS",
    "Assigner",
    "Assignment",
    "AssignmentError",
    "CompiledPart",
    "MappingPart",
    "SequenceRequest",
    "StreamEntry",
    "TriggerMap",
    "TriggerMapError",
    "VirtualWorker",
]

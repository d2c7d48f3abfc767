"""Packets of the Contrast scan controller's ZMQ stream.

Contrast publishes one single-frame message per event: a pickled ``dict`` (an ``OrderedDict``
for scan points) whose ``status`` says what it is:

* ``"started"``: a scan begins (:class:`ContrastStarted`), with its number, data path, command
  line and usually a ``snapshot`` of all motor positions;
* ``"running"``: one scan point (:class:`ContrastRunning`); ``dt`` is the time since the scan
  started, every other key is a record of that point, kept as an extra field: motor positions
  (``sx``), dicts of detector values holding numpy arrays (``pseudo``, ``panda0``), links to
  detector files (``xspress3``);
* ``"finished"``: the scan ended (:class:`ContrastFinished`), same fields as started;
* ``"heartbeat"``: keep-alive between scans (:class:`ContrastHeartbeat`).

Received frames are decoded by :func:`dranspose.protocols.contrast.parser.parse`, which unpickles
them with the restricted :func:`dranspose.protocols.common.safe_pickle.safe_loads`.
``to_stream_data`` pickles a packet the way Contrast does, for synthetic sources and tests.

As in the original dranspose 0.2.0, ``status`` defaults to the packet's own value for started,
running and finished packets (``ContrastStarted(path=..., scannr=..., description=...)``), and
is required for heartbeats.
"""

from __future__ import annotations

import pickle
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from dranspose.core.event import StreamData

CONTRAST_TYPE = "contrast"
"""The stream type ingesters give Contrast streams."""


class ContrastBase(BaseModel):
    """What every Contrast packet has: a ``status``; any other key is kept as an extra field."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def to_stream_data(self, typ: str = CONTRAST_TYPE, protocol: int = 2) -> StreamData:
        """The single frame Contrast sends for this packet: its fields pickled as a dict.

        Contrast pickles scan messages with protocol 2 (heartbeats with 4); numpy arrays in
        extra fields are pickled as they are.
        """
        message = self.model_dump(mode="python")
        return StreamData(typ=typ, frames=[pickle.dumps(message, protocol=protocol)])


class ContrastStarted(ContrastBase):
    """A scan started: ``scannr`` is written to ``path``; ``description`` is the command."""

    status: Literal["started"] = "started"
    path: str
    scannr: int
    description: str
    snapshot: Optional[dict[str, Any]] = None


class ContrastRunning(ContrastBase):
    """One scan point; the records (positions, detector values) are extra fields."""

    status: Literal["running"] = "running"
    dt: float


class ContrastFinished(ContrastBase):
    """A scan ended; the fields repeat those of :class:`ContrastStarted`."""

    status: Literal["finished"] = "finished"
    path: str
    scannr: int
    description: str
    snapshot: Optional[dict[str, Any]] = None


class ContrastHeartbeat(ContrastBase):
    """Keep-alive message, sent while no scan runs."""

    status: Literal["heartbeat"]


ContrastMessage = Annotated[
    Union[ContrastStarted, ContrastRunning, ContrastFinished, ContrastHeartbeat],
    Field(discriminator="status"),
]
"""Any Contrast packet, told apart by ``status`` (a type for annotations)."""

ContrastPacket: TypeAdapter[
    Union[ContrastStarted, ContrastRunning, ContrastFinished, ContrastHeartbeat]
] = TypeAdapter(ContrastMessage)
"""Validates an unpickled Contrast dict into the matching packet:
``ContrastPacket.validate_python(message)``."""

ContrastPacketAdapter = ContrastPacket
ContrastPacketType = ContrastMessage

__all__ = [
    "CONTRAST_TYPE",
    "ContrastBase",
    "ContrastFinished",
    "ContrastHeartbeat",
    "ContrastMessage",
    "ContrastPacket",
    "ContrastPacketAdapter",
    "ContrastPacketType",
    "ContrastRunning",
    "ContrastStarted",
]

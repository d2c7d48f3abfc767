"""Packets of the Xspress3 fluorescence detector's ZMQ stream.

A series is a start message, one message per image, and an end message; each starts with a
JSON header whose ``htype`` says what it is:

* ``"header"``: start of a series (:class:`XspressStart`), one frame;
* ``"image"``: one acquisition (:class:`XspressImage`), three frames: the header, the spectra
  (``shape`` ``[channels, bins]`` of ``type``, uncompressed) and a pickled list of per-channel
  arrays, in this order: output count rate, all events, all good events, clock ticks, total
  ticks, reset ticks, event widths, dead-time correction factor, and on newer servers the counts
  of each window ``[windows, channels]``;
* ``"series_end"``: end of the series (:class:`XspressEnd`), one frame.

Older servers send every frame as its own ZMQ message; newer ones send an image as one
three-frame multipart message. Ingesters hand over all frames of a message either way (see
:func:`dranspose.protocols.xspress3.parser.group_single_frames`), and
:func:`dranspose.protocols.xspress3.parser.parse` decodes them, unpickling the meta frame with the
restricted :func:`dranspose.protocols.common.safe_pickle.safe_loads`. The meta values are named as in
the original dranspose project (``ocr``, ``AllEvents``, ..., ``dtc``). ``to_stream_data`` builds
the frames of a packet, for synthetic sources and tests.

The constructors accept every call the original dranspose 0.2.0 accepted: an image built with
``frame``, ``shape`` and ``type`` alone (``exptime`` defaulting to the original's ``1``), with
``data=`` and the original's ``meta={name: array}`` dict, or with the meta arrays as fields.
Without ``data`` and meta, ``to_stream_data`` gives the header frame alone, as the original did
(old servers send each frame as its own message).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Optional, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from dranspose.core.event import StreamData

XSPRESS_TYPE = "xspress"
"""The stream type ingesters give Xspress3 streams."""

META_NAMES = (
    "ocr",
    "AllEvents",
    "AllGood",
    "ClockTicks",
    "TotalTicks",
    "ResetTicks",
    "event_widths",
    "dtc",
)
"""The per-channel arrays every meta pickle starts with, in order."""

WINDOW_COUNTS = "window_counts"
"""The optional ninth meta item: counts per window and channel, ``[windows, channels]``."""

_META_KEYS = (*META_NAMES, WINDOW_COUNTS)


def _meta_fields(meta: Any) -> dict[str, Any]:
    """The fields a ``meta`` dict (the original's form: name to array) stands for."""
    if not isinstance(meta, Mapping):
        raise ValueError(
            f"meta must be a dict of {', '.join(_META_KEYS)} to arrays, got {type(meta).__name__}"
        )
    unknown = [key for key in meta if key not in _META_KEYS]
    if unknown:
        raise ValueError(
            f"meta has unknown item(s) {', '.join(repr(k) for k in unknown)}; expected "
            f"{', '.join(_META_KEYS)}"
        )
    return dict(meta)


class XspressBase(BaseModel):
    """Fields every Xspress3 packet has; unknown header fields are kept as extras."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def header_frame(self) -> bytes:
        """The JSON header frame of this packet (without spectra or meta)."""
        return self.model_dump_json().encode()

    def to_stream_data(self, typ: str = XSPRESS_TYPE) -> StreamData:
        """The frames of this packet's message."""
        return StreamData(typ=typ, frames=[self.header_frame()])


class XspressStart(XspressBase):
    """Start of a series; ``filename`` is where the detector server writes."""

    htype: Literal["header"] = "header"
    filename: str


class XspressImage(XspressBase):
    """One acquisition: ``data`` are the spectra, ``[channels, bins]``, plus per-channel meta.

    A parsed ``data`` is a view of the received frame, not a copy: it is read-only when the frame
    is ``bytes``. The meta arrays each hold one value per channel; :attr:`meta` gives them as a
    dict, as the original project did.
    """

    htype: Literal["image"] = "image"
    frame: int
    shape: list[int]
    exptime: Optional[float] = 1
    type: str
    compression: Optional[str] = "none"
    data: Optional[np.ndarray] = Field(default=None, exclude=True)
    ocr: Optional[np.ndarray] = Field(default=None, exclude=True)
    """Output count rate per channel."""
    AllEvents: Optional[np.ndarray] = Field(default=None, exclude=True)
    AllGood: Optional[np.ndarray] = Field(default=None, exclude=True)
    ClockTicks: Optional[np.ndarray] = Field(default=None, exclude=True)
    TotalTicks: Optional[np.ndarray] = Field(default=None, exclude=True)
    ResetTicks: Optional[np.ndarray] = Field(default=None, exclude=True)
    event_widths: Optional[np.ndarray] = Field(default=None, exclude=True)
    dtc: Optional[np.ndarray] = Field(default=None, exclude=True)
    """Dead-time correction factor per channel (multiply the spectra by it)."""
    window_counts: Optional[np.ndarray] = Field(default=None, exclude=True)
    extra_meta: list[Any] = Field(default_factory=list, exclude=True)
    """Meta items after the known ones, if a server sends more."""

    @model_validator(mode="before")
    @classmethod
    def _spread_meta(cls, values: Any) -> Any:
        """Take the original's ``meta={name: array}`` argument apart into the named fields."""
        if not isinstance(values, dict) or "meta" not in values:
            return values
        values = dict(values)
        meta = values.pop("meta")
        if meta is None:
            return values
        for key, value in _meta_fields(meta).items():
            if key in values:
                raise ValueError(f"{key} given twice: as a field and in meta")
            values[key] = value
        return values

    @classmethod
    def from_array(
        cls,
        array: Any,
        *,
        frame: int,
        meta: Mapping[str, Any],
        exptime: Optional[float] = 1,
        **extra: Any,
    ) -> XspressImage:
        """An image whose ``shape`` and ``type`` are taken from ``array``; ``meta`` maps the
        names in :data:`META_NAMES` (and optionally ``window_counts``) to arrays."""
        arr = np.asarray(array)
        dtype = arr.dtype
        return cls(
            frame=frame,
            shape=list(arr.shape),
            exptime=exptime,
            type=dtype.name if dtype.isnative else dtype.str,
            compression="none",
            data=arr,
            **{name: np.asarray(value) for name, value in meta.items()},
            **extra,
        )

    @property
    def meta(self) -> dict[str, Any]:
        """The meta arrays by name, in the order the detector sends them (those that are set;
        all of them for a parsed image)."""
        values = {name: getattr(self, name) for name in _META_KEYS}
        return {name: value for name, value in values.items() if value is not None}

    @meta.setter
    def meta(self, meta: Mapping[str, Any]) -> None:
        """Set the meta arrays from a dict by name, as the original's parser assigned them."""
        for key, value in _meta_fields(meta).items():
            setattr(self, key, value)

    def meta_list(self) -> list[Any]:
        """The meta items as the detector pickles them: a list in :data:`META_NAMES` order."""
        missing = [name for name in META_NAMES if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"image frame={self.frame} lacks meta {', '.join(missing)}; the meta pickle "
                f"needs all of {', '.join(META_NAMES)}"
            )
        return list(self.meta.values()) + list(self.extra_meta)

    def payload_frames(self) -> list[bytes]:
        """The spectra frame (C order, as ``type`` and ``shape`` say) and the meta pickle."""
        if self.data is None:
            raise ValueError(f"image frame={self.frame} has no data to encode; pass data=")
        arr = np.asarray(self.data)
        dtype = np.dtype(self.type)
        if arr.dtype != dtype:
            raise ValueError(f"image type is {self.type!r} but data has dtype {arr.dtype}")
        if list(arr.shape) != list(self.shape):
            raise ValueError(f"image shape is {self.shape} but data has shape {list(arr.shape)}")
        if self.compression not in (None, "none"):
            raise ValueError(f"cannot encode compression {self.compression!r}; expected 'none'")
        return [arr.tobytes(), pickle.dumps(self.meta_list(), protocol=4)]

    def to_stream_data(self, typ: str = XSPRESS_TYPE) -> StreamData:
        """Header, spectra and meta frames, as one grouped message; the header frame alone when
        the image has neither ``data`` nor meta (as the original dranspose did)."""
        if self.data is None and not self.meta and not self.extra_meta:
            return StreamData(typ=typ, frames=[self.header_frame()])
        return StreamData(typ=typ, frames=[self.header_frame(), *self.payload_frames()])


class XspressEnd(XspressBase):
    """End of a series."""

    htype: Literal["series_end"] = "series_end"


XspressMessage = Annotated[
    Union[XspressStart, XspressImage, XspressEnd], Field(discriminator="htype")
]
"""Any Xspress3 packet, told apart by ``htype`` (a type for annotations)."""

XspressPacket: TypeAdapter[Union[XspressStart, XspressImage, XspressEnd]] = TypeAdapter(
    XspressMessage
)
"""Validates a mapping into the matching packet (``XspressPacket.validate_json(header)``, as
the original's ingester does); an image validated this way has no data or meta unless the
mapping carries them, :func:`dranspose.protocols.xspress3.parser.parse` reads them from the
frames."""

XspressPacketAdapter = XspressPacket
XspressPacketType = XspressMessage

__all__ = [
    "META_NAMES",
    "WINDOW_COUNTS",
    "XSPRESS_TYPE",
    "XspressBase",
    "XspressEnd",
    "XspressImage",
    "XspressMessage",
    "XspressPacket",
    "XspressPacketAdapter",
    "XspressPacketType",
    "XspressStart",
]

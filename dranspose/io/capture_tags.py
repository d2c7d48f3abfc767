"""The CBOR hooks tools written for the original dranspose use to read and write ingester dumps.

``cbor2.dump(message, f, default=message_encoder)`` writes a partial event as the original did
(tag 42877 wrapping ``[event_number, streams, created_at]``, each stream a tag 42878 wrapping
``[typ, frames]``), and ``cbor2.load(f, tag_hook=message_tag_hook)`` reads one back. Both work
under cbor2 5 (which calls a tag hook with the decoder first) and cbor2 6 (which calls it with the
tag and an ``immutable`` flag). Decoding checks the item as the capture reader does
(:mod:`dranspose.io.capture_layouts`, the one owner of the layouts), so a damaged item is refused
with the detail that is wrong instead of yielding a half-built event.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import cbor2

from dranspose.core.event import InternalWorkerMessage, StreamData
from dranspose.io.capture_format import MESSAGE_TAG, STREAM_TAG
from dranspose.io.capture_layouts import LayoutError, from_message_tag, from_stream_tag

__all__ = ["message_encoder", "message_tag_hook"]


def message_encoder(encoder: cbor2.CBOREncoder, value: Any) -> None:
    """cbor2's ``default`` hook: a partial event or a stream as the original's tags.

    ``created_at`` is written as a datetime, as the original wrote it, so a file written here is
    byte for byte what the original writes for the same event; an event without one has two
    fields, which every release reads.
    """
    if isinstance(value, InternalWorkerMessage):
        fields: list[Any] = [int(value.event_number), dict(value.streams)]
        if value.created_at is not None:
            fields.append(datetime.fromtimestamp(value.created_at, timezone.utc))
        encoder.encode(cbor2.CBORTag(MESSAGE_TAG, fields))
    elif isinstance(value, StreamData):
        encoder.encode(cbor2.CBORTag(STREAM_TAG, [value.typ, value.frame_bytes()]))
    else:
        raise TypeError(
            f"message_encoder encodes InternalWorkerMessage and StreamData, "
            f"not {type(value).__name__}"
        )


def message_tag_hook(decoder: Any, tag: Any = None, shareable_index: Any = None) -> Any:
    """cbor2's ``tag_hook``: tags 42877 and 42878 become the models, other tags stay as they are.

    Raises ``ValueError`` naming the tag and the detail when a dump item is malformed.
    """
    if isinstance(decoder, cbor2.CBORTag):  # cbor2 6: hook(tag, immutable)
        tag = decoder
    if not isinstance(tag, cbor2.CBORTag):
        raise TypeError(f"message_tag_hook expects a cbor2.CBORTag, got {type(tag).__name__}")
    try:
        if tag.tag == MESSAGE_TAG:
            return from_message_tag(tag.value)
        if tag.tag == STREAM_TAG:
            return from_stream_tag(tag.value)
    except LayoutError as exc:
        raise ValueError(f"CBOR tag {tag.tag}: {exc}") from None
    return tag

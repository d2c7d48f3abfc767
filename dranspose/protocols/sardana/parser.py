"""Parser for Sardana streams: :func:`parse` turns a ``StreamData`` into a Sardana packet.

A message is one frame holding the JSON body the recorder posted. Ingesters should tag it with
``"type"`` (the endpoint it came to decides which); untagged bodies are recognised by their keys,
because an ingester that forwards bodies verbatim loses the endpoint. The envelope Sardana's JSON
recorder uses elsewhere (``{"type": "record_data", "data": {...}, "macro_id": ...}``) is unwrapped
too. The JSON is decoded with pydantic-core, which, like Python's ``json``, accepts the ``NaN`` and
``Infinity`` Sardana writes for missing readings.

:func:`frame_for_post` is the HTTP ingester's half: it turns a body posted to ``/v1/<endpoint>``
into the tagged frame it forwards; :func:`post_for_frame` turns such a frame back into the post,
to play a capture to an ingester as Sardana would.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Union

from dranspose.core.event import StreamData
from dranspose.protocols.common.errors import ParseError
from dranspose.protocols.common.json_header import json_kind, load_json_object, short, validate
from dranspose.protocols.common.stream_argument import stream_argument
from dranspose.protocols.sardana.packets import (
    SARDANA_ENDPOINTS,
    SARDANA_TYPE,
    SardanaDataDescription,
    SardanaRecordData,
    SardanaRecordEnd,
)

__all__ = [
    "IGNORED_ENDPOINTS",
    "POST_ENDPOINTS",
    "ParseError",
    "frame_for_post",
    "parse",
    "post_for_frame",
]

IGNORED_ENDPOINTS = ("custom_data",)
"""Endpoints Sardana posts to that carry no scan record: accepted, not forwarded."""
POST_ENDPOINTS = (*SARDANA_ENDPOINTS, *IGNORED_ENDPOINTS)
"""Every endpoint (``/v1/<endpoint>``) an HTTP ingester for Sardana accepts."""
_ENDPOINT_OF = {kind: endpoint for endpoint, kind in SARDANA_ENDPOINTS.items()}

_BY_TYPE: dict[str, type[Union[SardanaDataDescription, SardanaRecordData, SardanaRecordEnd]]] = {
    "DataDescription": SardanaDataDescription,
    "RecordData": SardanaRecordData,
    "RecordEnd": SardanaRecordEnd,
}
# Keys a record_end body may hold; a body with only these (or none) is a scan end.
_END_KEYS = frozenset({"endtime", "deadtime", "motiontime", "macro_id"})
_WHERE = "frame 0 (JSON body)"


def parse(
    data: Optional[StreamData] = None, *, stream_data: Optional[StreamData] = None
) -> Union[SardanaDataDescription, SardanaRecordData, SardanaRecordEnd]:
    """Decode one Sardana message into :class:`SardanaDataDescription`,
    :class:`SardanaRecordData` or :class:`SardanaRecordEnd`.

    Raises :class:`ParseError` naming the stream type and what was expected when the frame is not
    one JSON object describing a Sardana record. Any ``typ`` is accepted: only the frame matters.
    """
    stream = stream_argument(data, stream_data, "sardana.parse")
    typ = stream.typ
    frames = stream.frames
    if len(frames) != 1:
        raise ParseError(
            f"{typ} stream: {len(frames)} frames; expected exactly one frame holding the JSON "
            f"body the recorder posted"
        )
    kind, body = _classify(typ, _load_body(typ, frames[0]))
    return validate(_BY_TYPE[kind], body, f"{typ} {_WHERE}: invalid {kind}", "body")


def _load_body(typ: str, frame: Any) -> dict[str, Any]:
    return load_json_object(frame, f"{typ} {_WHERE}", "a JSON object")


def _classify(typ: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Which packet ``body`` is, and the mapping to validate it from."""
    if "type" in body:
        kind = body["type"]
        if type(kind) is str and kind in _BY_TYPE:
            return kind, body
        if type(kind) is str and kind in SARDANA_ENDPOINTS:
            data = body.get("data")
            if type(data) is not dict:
                raise ParseError(
                    f"{typ} {_WHERE}: recorder packet of type {kind!r} has "
                    f"{'no data' if data is None else 'data ' + short(data)}; expected a "
                    f"'data' object holding the record"
                )
            unwrapped = dict(data)
            for key, value in body.items():
                if key not in ("type", "data"):
                    unwrapped.setdefault(key, value)
            unwrapped["type"] = SARDANA_ENDPOINTS[kind]
            return SARDANA_ENDPOINTS[kind], unwrapped
        raise ParseError(
            f"{typ} {_WHERE}: type {short(kind)}; expected 'DataDescription', 'RecordData' "
            f"or 'RecordEnd' (or a recorder packet 'data_desc', 'record_data' or 'record_end' "
            f"with a 'data' object)"
        )
    # the keys the original dranspose's models required tell its untagged bodies apart too
    if "column_desc" in body or "serialno" in body:
        return "DataDescription", body
    if "point_nb" in body or "timestamp" in body:
        return "RecordData", body
    if _END_KEYS.issuperset(body):
        return "RecordEnd", body
    keys = ", ".join(repr(k) for k in list(body)[:8])
    more = ", ..." if len(body) > 8 else ""
    raise ParseError(
        f"{typ} {_WHERE}: untagged body with keys {keys}{more} is no Sardana record; expected "
        f"a 'type' field, or 'column_desc'/'serialno' (data description), 'point_nb'/'timestamp' "
        f"(record data), or "
        f"nothing but 'endtime'/'deadtime' (record end)"
    )


def frame_for_post(endpoint: str, body: bytes) -> Optional[bytes]:
    """The frame an ingester forwards for ``body`` posted to ``/v1/<endpoint>``: the JSON object
    with a ``"type"`` key naming its packet first. ``None`` for endpoints that carry no record
    (:data:`IGNORED_ENDPOINTS`). Raises :class:`ParseError` saying what is wrong with an unknown
    endpoint, a body that is not one JSON object, or a ``type`` that contradicts the endpoint.
    """
    if endpoint in IGNORED_ENDPOINTS:
        return None
    kind = SARDANA_ENDPOINTS.get(endpoint)
    if kind is None:
        raise ParseError(
            f"unknown Sardana endpoint {endpoint!r}; expected one of "
            f"{', '.join(repr(e) for e in POST_ENDPOINTS)}"
        )
    where = f"POST /v1/{endpoint}"
    try:
        record = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(
            f"{where}: body is not valid JSON ({exc}); expected a JSON object"
        ) from exc
    except RecursionError as exc:  # a posted body is untrusted: nesting must not crash us
        raise ParseError(
            f"{where}: body is JSON nested too deeply; expected a flat JSON object"
        ) from exc
    if type(record) is not dict:
        raise ParseError(f"{where}: body is a JSON {json_kind(record)}, expected a JSON object")
    given = record.pop("type", kind)
    if given != kind:
        raise ParseError(
            f"{where}: body says type {short(given)}, but this endpoint takes {kind!r}"
        )
    return json.dumps({"type": kind, **record}).encode()


def post_for_frame(frame: bytes) -> tuple[str, bytes]:
    """The endpoint and body Sardana would have posted for a forwarded frame (tagged, untagged
    or a recorder envelope); the inverse of :func:`frame_for_post`. Raises :class:`ParseError`
    when the frame is no Sardana record."""
    typ = SARDANA_TYPE
    body = _load_body(typ, frame)
    kind, record = _classify(typ, body)
    record = {key: value for key, value in record.items() if key != "type"}
    return _ENDPOINT_OF[kind], json.dumps(record).encode()

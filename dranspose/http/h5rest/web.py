"""The HTTP side shared by the routes: JSON answers, HDF REST query flags and bodies, and
the OpenAPI entries of parameters the handlers read from the request themselves.

The handlers take their query parameters from ``request.query_params`` (the HDF REST names
and forms, e.g. ``include_attrs=1`` or ``Limit``, are h5pyd's, not FastAPI's); the
``doc_*`` entries only document them, so the schema tells clients, and the schema-driven
bad-input tests, what each route accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Optional

from fastapi import HTTPException, Request
from fastapi.responses import Response

__all__ = [
    "NAMES",
    "OBJECT_QUERY",
    "accepts_binary",
    "doc_json_body",
    "doc_query",
    "flag",
    "json_body",
    "json_response",
    "limit",
    "name_list",
]


def json_response(content: Any) -> Response:
    """Compact JSON, with NaN and infinities as Python's ``json`` (and so h5pyd) reads them."""
    body = json.dumps(content, allow_nan=True, ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode("utf-8"), media_type="application/json")


def accepts_binary(request: Request) -> bool:
    """Whether ``Accept`` asks for application/octet-stream (with a quality above 0)."""
    for item in request.headers.get("accept", "").split(","):
        media, _, params = item.partition(";")
        if media.strip().lower() == "application/octet-stream":
            q = re.search(r"q\s*=\s*(\d*\.?\d+)", params)
            return not (q and float(q.group(1)) == 0.0)
    return False


def flag(value: Optional[str]) -> bool:
    """A boolean query parameter: absent, empty, 0, false, no are off."""
    return value is not None and value.strip().lower() not in ("", "0", "false", "f", "no", "n")


def limit(items: list[dict[str, Any]], params: Mapping[str, str], key: str) -> list[dict[str, Any]]:
    """Apply the HDF REST ``Marker`` (start after that name) and ``Limit`` parameters."""
    marker = params.get("Marker")
    if marker:
        names = [item[key] for item in items]
        items = items[names.index(marker) + 1 :] if marker in names else []
    count = params.get("Limit")
    if count:
        try:
            items = items[: max(0, int(count))]
        except ValueError:
            raise HTTPException(400, f"Limit {count!r} is not an integer") from None
    return items


async def json_body(request: Request) -> Any:
    """The request's JSON body, ``{}`` when it is empty; 400 when it is no JSON."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from None


def name_list(body: Any, key: str) -> Optional[list[str]]:
    """``body[key]`` when it is a list of names, None without it; 400 for anything else."""
    names = body.get(key) if isinstance(body, dict) else None
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        raise HTTPException(400, f"{key} must be a list of names")
    return names


def doc_query(*names: str) -> dict[str, Any]:
    """OpenAPI entries of optional string query parameters."""
    return {
        "parameters": [
            {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
            for n in names
        ]
    }


def doc_json_body(properties: dict[str, Any], binary: bool = False) -> dict[str, Any]:
    """The OpenAPI entry of an optional JSON object body (or raw bytes with ``binary``)."""
    content: dict[str, Any] = {
        "application/json": {"schema": {"type": "object", "properties": properties}}
    }
    if binary:
        content["application/octet-stream"] = {"schema": {"type": "string", "format": "binary"}}
    return {"requestBody": {"required": False, "content": content}}


NAMES = {"type": "array", "items": {"type": "string"}}
OBJECT_QUERY = doc_query("domain", "include_links", "include_attrs", "getalias", "verbose")

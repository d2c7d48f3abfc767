"""The FastAPI router: the HDF REST routes h5pyd and silx call, each a thin handler.

Handlers parse the request, call :class:`~dranspose.http.h5rest.domain.Domain` (which reads
the tree under the lock) and wrap the answer. The route names and OpenAPI entries are part of
the schema clients and the bad-input tests see, so they stay as they are.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable, ContextManager, Optional

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dranspose.http.auth import READ
from dranspose.http.h5rest.domain import Domain
from dranspose.http.h5rest.selections import FlatPoints
from dranspose.http.h5rest.types import shape_json, type_json
from dranspose.http.h5rest.values import jsonable, vlen_bytes
from dranspose.http.h5rest.web import (
    NAMES,
    OBJECT_QUERY,
    accepts_binary,
    doc_json_body,
    doc_query,
    flag,
    json_body,
    json_response,
    limit,
    name_list,
)

__all__ = ["MAX_SELECTION_BYTES", "create_h5_router"]

#: Default limit of one value request (elements times item size); larger ones answer 413.
MAX_SELECTION_BYTES = 512 * 1024 * 1024


def create_h5_router(
    get_tree: Callable[[], Any],
    get_lock: Callable[[], ContextManager[Any]],
    max_selection_bytes: int = MAX_SELECTION_BYTES,
) -> APIRouter:
    """A router serving ``get_tree()`` as a read-only HDF5 domain (see the package docs).

    ``get_lock()`` is entered around every read of the tree, e.g.
    ``lambda: reducer_api.publish_lock(reducer)``; a value request of more than
    ``max_selection_bytes`` answers 413.
    """
    router = APIRouter(tags=["hdf5"])
    domain = Domain(get_tree, get_lock, max_selection_bytes)
    _add_server_routes(router, domain)
    _add_group_routes(router, domain)
    _add_dataset_routes(router, domain)
    for collection, kind in (("groups", "g"), ("datasets", "d")):
        _add_attribute_routes(router, domain, collection, kind)
    return router


def _acl(user: str) -> dict[str, Any]:
    """Everyone may read, no one may change anything: the domain is read-only."""
    return {
        "userName": user,
        "create": False,
        "read": True,
        "update": False,
        "delete": False,
        "readACL": True,
        "updateACL": False,
    }


def _add_server_routes(router: APIRouter, domain: Domain) -> None:
    """The domain itself and what h5pyd asks about the server."""

    @router.get("/", openapi_extra=doc_query("domain", "verbose"))
    def get_domain(request: Request) -> Response:
        """The domain: its root group id (and object counts with ``verbose``)."""
        return json_response(domain.domain_json(request.query_params))

    @router.get("/about")
    def about() -> Response:
        return json_response(
            {
                "name": "dranspose",
                "about": "live results of a dranspose reducer, read-only HDF REST API",
                "greeting": "Welcome to dranspose",
                "state": "READY",
                "start_time": int(domain.started),
                "node_count": 1,
            }
        )

    @router.get("/info")
    def info() -> Response:
        return json_response(
            {"state": "READY", "start_time": int(domain.started), "node_type": "sn"}
        )

    @router.get("/acls")
    def get_acls() -> Response:
        return json_response({"acls": [_acl("default")], "hrefs": []})

    @router.get("/acls/{user}")
    def get_acl(user: str) -> Response:
        return json_response({"acl": _acl(user), "hrefs": []})


def _pick(
    items: list[dict[str, Any]], key: str, names: Optional[list[str]], what: str
) -> list[dict[str, Any]]:
    """The items named in ``names`` (all without it); 404 when none of them exists."""
    if names is None:
        return items
    by_name = {item[key]: item for item in items}
    if names and not any(n in by_name for n in names):
        raise HTTPException(404, f"no {what} named {names}")
    return [by_name[n] for n in names if n in by_name]


def _add_group_routes(router: APIRouter, domain: Domain) -> None:
    @router.get("/groups/{obj_id}", openapi_extra=OBJECT_QUERY)
    def get_group(obj_id: str, request: Request) -> Response:
        return json_response(domain.object_json("g", obj_id, request.query_params))

    @router.get("/groups/{obj_id}/links", openapi_extra=doc_query("pattern", "Limit", "Marker"))
    def get_links(obj_id: str, request: Request) -> Response:
        """The links in insertion order; ``pattern``, ``Marker`` and ``Limit`` apply."""
        links = domain.group_links(obj_id)
        pattern = request.query_params.get("pattern")
        if pattern:
            links = [link for link in links if fnmatch.fnmatchcase(link["title"], pattern)]
        return json_response({"links": limit(links, request.query_params, "title"), "hrefs": []})

    # h5pyd's POSTs are queries: reads, for the access token (dranspose/http/auth.py)
    @router.post(
        "/groups/{obj_id}/links", openapi_extra={**READ, **doc_json_body({"titles": NAMES})}
    )
    async def post_links(obj_id: str, request: Request) -> Response:
        """Several links at once: body ``{"titles": [...]}`` (all links without it)."""
        titles = name_list(await json_body(request), "titles")
        links = await run_in_threadpool(domain.group_links, obj_id)
        return json_response({"links": _pick(links, "title", titles, "links"), "hrefs": []})

    @router.get("/groups/{obj_id}/links/{name}")
    def get_link(obj_id: str, name: str) -> Response:
        for link in domain.group_links(obj_id):
            if link["title"] == name:
                return json_response({"link": link, "hrefs": [], **domain.stamps()})
        raise HTTPException(404, f"group {obj_id!r} has no member {name!r}")


def _refuse_queries(request: Request) -> None:
    for param in ("query", "fields"):
        if param in request.query_params:
            raise HTTPException(400, f"the {param!r} parameter is not supported")


def _value_response(out: np.ndarray, vlen: bool, request: Request) -> Response:
    """The selection as bytes when Accept asks for application/octet-stream, else JSON."""
    if accepts_binary(request):
        # the selection is already a private C-contiguous copy: send its memory as it is
        body = vlen_bytes(out) if vlen else out.reshape(-1).data.cast("B")
        return Response(body, media_type="application/octet-stream")
    return json_response({"value": jsonable(out.tolist()), "hrefs": []})


async def _posted_selection(request: Request) -> tuple[Optional[str], Any]:
    """(select, points) of a POSTed value request: binary or JSON points, or a long select."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/octet-stream":
        raw = await request.body()
        if len(raw) % 8:
            raise HTTPException(400, "binary points must be whole uint64 values")
        return request.query_params.get("select"), FlatPoints(np.frombuffer(raw, dtype="<u8"))
    body = await json_body(request)
    if isinstance(body, dict) and "points" in body:
        return request.query_params.get("select"), body["points"]
    if isinstance(body, dict) and isinstance(body.get("select"), str):
        return body["select"], None
    raise HTTPException(400, 'the body must be {"points": ...} or {"select": "..."}')


def _add_dataset_routes(router: APIRouter, domain: Domain) -> None:
    @router.get("/datasets/{obj_id}", openapi_extra=OBJECT_QUERY)
    def get_dataset(obj_id: str, request: Request) -> Response:
        return json_response(domain.object_json("d", obj_id, request.query_params))

    @router.get("/datasets/{obj_id}/shape")
    def get_shape(obj_id: str) -> Response:
        shape = domain.dataset(obj_id).shape
        return json_response(
            {"shape": shape_json(shape, bool(shape)), "hrefs": [], **domain.stamps()}
        )

    @router.get("/datasets/{obj_id}/type")
    def get_type(obj_id: str) -> Response:
        return json_response({"type": type_json(domain.dataset(obj_id).wire), "hrefs": []})

    @router.get("/datasets/{obj_id}/value", openapi_extra=doc_query("select"))
    def get_value(obj_id: str, request: Request) -> Response:
        """A selection, as bytes when Accept asks for application/octet-stream, else JSON."""
        _refuse_queries(request)
        out, vlen = domain.read_value(obj_id, request.query_params.get("select"))
        return _value_response(out, vlen, request)

    @router.post(
        "/datasets/{obj_id}/value",
        openapi_extra={
            **READ,
            **doc_query("select"),
            **doc_json_body({"points": {}, "select": {"type": "string"}}, binary=True),
        },
    )
    async def post_value(obj_id: str, request: Request) -> Response:
        """Point selections (uint64 binary or ``{"points": ...}``) and long ``{"select": ...}``."""
        _refuse_queries(request)
        select, points = await _posted_selection(request)
        out, vlen = await run_in_threadpool(domain.read_value, obj_id, select, points)
        return _value_response(out, vlen, request)

    @router.get("/datatypes/{obj_id}")
    def get_datatype(obj_id: str) -> Response:
        raise HTTPException(404, f"no datatype {obj_id!r}: this domain has no committed types")


def _add_attribute_routes(router: APIRouter, domain: Domain, collection: str, kind: str) -> None:
    """The attribute routes of ``collection`` ("groups" or "datasets", ids of ``kind``)."""

    def with_data(request: Request) -> bool:
        value = request.query_params.get("IncludeData")
        return value is None or flag(value)

    def one(obj_id: str, name: str, data: bool) -> dict[str, Any]:
        for attr in domain.attribute_list(kind, obj_id, data):
            if attr["name"] == name:
                return attr
        raise HTTPException(404, f"{obj_id!r} has no attribute {name!r}")

    prefix = f"/{collection}/{{obj_id}}/attributes"

    @router.get(
        prefix,
        name=f"{collection}_attributes",
        openapi_extra=doc_query("IncludeData", "Limit", "Marker"),
    )
    def get_attributes(obj_id: str, request: Request) -> Response:
        attrs = domain.attribute_list(kind, obj_id, with_data(request))
        attrs = limit(attrs, request.query_params, "name")
        return json_response({"attributes": attrs, "hrefs": []})

    @router.post(
        prefix,
        name=f"{collection}_attributes_by_name",
        openapi_extra={**READ, **doc_query("IncludeData"), **doc_json_body({"attr_names": NAMES})},
    )
    async def post_attributes(obj_id: str, request: Request) -> Response:
        """Several attributes at once: body ``{"attr_names": [...]}``."""
        names = name_list(await json_body(request), "attr_names")
        attrs = await run_in_threadpool(domain.attribute_list, kind, obj_id, with_data(request))
        return json_response({"attributes": _pick(attrs, "name", names, "attributes"), "hrefs": []})

    @router.get(
        prefix + "/{name}", name=f"{collection}_attribute", openapi_extra=doc_query("IncludeData")
    )
    def get_attribute(obj_id: str, name: str, request: Request) -> Response:
        return json_response({**one(obj_id, name, with_data(request)), "hrefs": []})

    @router.get(prefix + "/{name}/value", name=f"{collection}_attribute_value")
    def get_attribute_value(obj_id: str, name: str) -> Response:
        return json_response({"value": one(obj_id, name, True)["value"], "hrefs": []})

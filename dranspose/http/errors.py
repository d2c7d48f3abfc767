"""One shape for every 4xx of our REST APIs: ``{"detail": "<a sentence>"}``.

FastAPI answers a request whose path or query does not fit the declared types with a list of
pydantic error records. Clients (the dashboard, curl users, scripts) then have to know that format;
a sentence naming the parameter, where it was given, what was expected and what came instead is
what an operator can act on, and is what every other error of the APIs already says.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

_PLACES = {
    "query": "query parameter",
    "path": "path parameter",
    "header": "header",
    "cookie": "cookie",
    "body": "request body",
}


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def describe_validation_error(exc: RequestValidationError) -> str:
    """``query parameter 'limit': Input should be ... (got '-3')``, one clause per problem."""
    clauses = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        place = _PLACES.get(loc[0], loc[0]) if loc else "request"
        name = ".".join(loc[1:])
        where = f"{place} {name!r}" if name else place
        clause = f"{where}: {error.get('msg', 'invalid')}"
        if "input" in error and error.get("type") != "missing":
            clause += f" (got {_shown(error['input'])})"
        clauses.append(clause)
    return "; ".join(clauses) or "the request does not fit the API"


def install_error_handlers(app: FastAPI) -> None:
    """Answer path, query and body validation errors with a 422 whose ``detail`` is a sentence."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe_validation_error(exc)}, status_code=422)


RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
"""OpenAPI extra for endpoints that read the raw request body themselves (parameter values)."""

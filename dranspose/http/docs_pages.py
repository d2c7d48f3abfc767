"""The HTTP apps' ``/docs`` page (Swagger UI), with its script and style from the package.

FastAPI's own page loads Swagger UI from a CDN: on a beamline network without internet it stays
blank. ``fastapi-offline`` (a maintained wheel that ships Swagger UI 5) serves the same page with
its assets mounted under :data:`DOCS_ASSETS`, from the app itself. Like FastAPI's page, it is
added before the access guard and needs no token. There is no ``/redoc``: ReDoc's bundle still
fetches its logo from its vendor's CDN; ``/docs`` and ``/openapi.json`` describe the same API.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

__all__ = ["DOCS_ASSETS", "new_app"]

DOCS_ASSETS = "/_docs_assets"
"""Where the page's script, style and icon are served (same origin as the API)."""


def new_app(**settings: Any) -> FastAPI:
    """A FastAPI app (``settings`` as FastAPI takes them) whose ``/docs`` works offline."""
    return FastAPIOffline(redoc_url=None, static_url=DOCS_ASSETS, **settings)

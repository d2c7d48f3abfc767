"""The H5Web viewer at ``/viewer/``: the built page, served from package data.

The page is built from ``frontend/viewer`` (H5Web, React; ``npm ci && npm run build``) into
``dranspose/viewer`` and committed, so installing dranspose needs no Node and a beamline
without internet serves the whole viewer itself. It reads the reducer's tree through
``../h5grove/`` (:mod:`dranspose.http.h5grove_api`), a relative URL, so it works behind any
prefix a proxy adds. Only the files the build produced are served; the hashed assets may be
cached forever, ``index.html`` is revalidated so a new build is picked up.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse, Response

from dranspose.http.auth import PUBLIC

__all__ = ["MEDIA_TYPES", "create_viewer_router", "viewer_files"]

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
    ".json": "application/json",
}


def _package_dir() -> Traversable:
    return resources.files("dranspose") / "viewer"


def viewer_files() -> dict[str, Traversable]:
    """Every servable file of the built viewer by its path below ``/viewer/``."""
    root = _package_dir()
    found: dict[str, Traversable] = {}
    if not root.is_dir():
        return found
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        for entry in folder.iterdir():
            name = prefix + entry.name
            if entry.is_dir():
                stack.append((entry, name + "/"))
            elif "." + name.rsplit(".", 1)[-1] in MEDIA_TYPES:
                found[name] = entry
    return found


def create_viewer_router() -> APIRouter:
    """``/viewer/`` (the page) and ``/viewer/<asset>``; 404 for anything else."""
    router = APIRouter(tags=["viewer"])
    files = viewer_files()

    def serve(name: str) -> Response:
        entry = files.get(name)
        if entry is None:
            if name == "index.html":
                raise HTTPException(
                    404, "the viewer is not built (npm ci && npm run build in frontend/viewer)"
                )
            raise HTTPException(404, f"the viewer has no file {name!r}")
        media = MEDIA_TYPES["." + name.rsplit(".", 1)[-1]]
        cache = "no-cache" if name == "index.html" else "public, max-age=31536000, immutable"
        return Response(entry.read_bytes(), media_type=media, headers={"Cache-Control": cache})

    @router.get("/viewer", include_in_schema=False, openapi_extra=PUBLIC)
    def viewer_redirect() -> Response:
        # relative, so it also works behind a proxy's prefix; the page's URLs need the slash
        return RedirectResponse("viewer/", status_code=307)

    @router.get("/viewer/", openapi_extra=PUBLIC)
    def viewer_page() -> Response:
        """The H5Web viewer of ``publish`` (updates live while a scan runs)."""
        return serve("index.html")

    @router.get("/viewer/{name:path}", include_in_schema=False, openapi_extra=PUBLIC)
    def viewer_asset(name: str) -> Response:
        return serve(name)

    return router

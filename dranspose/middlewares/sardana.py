"""``dranspose.middlewares.sardana``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.sardana.parser`."""

from dranspose.protocols.sardana.parser import (  # noqa: F401
    IGNORED_ENDPOINTS,
    POST_ENDPOINTS,
    parse,
    frame_for_post,
    post_for_frame,
    ParseError,
)

__all__ = [
    "IGNORED_ENDPOINTS",
    "POST_ENDPOINTS",
    "parse",
    "frame_for_post",
    "post_for_frame",
    "ParseError",
]

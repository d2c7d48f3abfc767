"""``dranspose.middlewares.sardana``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.sardana.parser`."""

from dranspose.protocols.sardana.parser import (
    IGNORED_ENDPOINTS,
    POST_ENDPOINTS,
    ParseError,
    frame_for_post,
    parse,
    post_for_frame,
)

__all__ = [
    "IGNORED_ENDPOINTS",
    "POST_ENDPOINTS",
    "ParseError",
    "frame_for_post",
    "parse",
    "post_for_frame",
]

"""``dranspose.middlewares.xspress``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.xspress3.parser`."""

from dranspose.protocols.xspress3.parser import (  # noqa: F401
    Frame,
    parse,
    SkipCallback,
    FrameGrouper,
    group_single_frames,
    ParseError,
)

__all__ = [
    "Frame",
    "parse",
    "SkipCallback",
    "FrameGrouper",
    "group_single_frames",
    "ParseError",
]

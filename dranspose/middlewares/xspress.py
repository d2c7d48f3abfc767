"""``dranspose.middlewares.xspress``: a public import path kept for payloads; the code lives in
:mod:`dranspose.protocols.xspress3.parser`."""

from dranspose.protocols.xspress3.parser import (
    Frame,
    FrameGrouper,
    ParseError,
    SkipCallback,
    group_single_frames,
    parse,
)

__all__ = [
    "Frame",
    "FrameGrouper",
    "ParseError",
    "SkipCallback",
    "group_single_frames",
    "parse",
]

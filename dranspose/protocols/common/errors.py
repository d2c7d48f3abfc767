"""The error every protocol parser raises for input it cannot make sense of."""

from __future__ import annotations


class ParseError(ValueError):
    """A stream's frames do not form a valid packet of the expected protocol.

    The message names the stream type, the frame that is wrong and what was expected there, so a
    payload can log it as is. The underlying decoder error, if any, is chained as ``__cause__``.
    """

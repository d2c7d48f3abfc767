"""The one ``StreamData`` argument of a parser, whichever name the caller used.

The original dranspose 0.2.0 named the argument of its parse functions ``data``
(``parse(data=stream)``); this rewrite named it ``stream_data``. Payloads written for either
must keep working, so a parser takes ``data`` first (by position or by name) and ``stream_data``
as a keyword, and asks :func:`stream_argument` for the one it was given.
"""

from __future__ import annotations

from typing import Any


def stream_argument(data: Any, stream_data: Any, where: str) -> Any:
    """The stream a parser was called with: ``data`` or ``stream_data``, exactly one of them.

    ``where`` names the parser in the ``TypeError`` raised when neither or both are given.
    """
    if data is None:
        if stream_data is None:
            raise TypeError(f"{where}() missing the StreamData to parse (argument 'data')")
        return stream_data
    if stream_data is not None:
        raise TypeError(
            f"{where}() got the StreamData twice ('data' and 'stream_data'); pass one of them"
        )
    return data

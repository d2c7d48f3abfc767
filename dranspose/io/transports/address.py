"""Host and port out of the ``tcp://host:port`` and ``http://host:port`` addresses on the command
line, with an error that says which form was expected."""

from __future__ import annotations

from urllib.parse import urlsplit


def host_port(url: str, scheme: str, what: str) -> tuple[str, int]:
    """``(host, port)`` of ``scheme://host:port``; ``*`` (or no host) means every interface and
    becomes ``""``. A bare ``host:port`` is taken as that scheme too."""
    text = url if "://" in url else f"{scheme}://{url}"
    parts = urlsplit(text.replace("://*:", "://0.0.0.0:", 1))
    example = f"{scheme}://host:port"
    if parts.scheme != scheme:
        raise ValueError(f"{what} {url!r}: expected {example}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{what} {url!r}: expected {example} with a port number")
    host = parts.hostname or ""
    return ("" if host == "0.0.0.0" and "*" in url else host), port

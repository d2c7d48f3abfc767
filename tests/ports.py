"""Free TCP ports for the servers tests start, and whether one is free again afterwards."""

from __future__ import annotations

import socket

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, and never one this test run handed out before.

    The kernel may give the same free port to two back-to-back requests (the first one is not
    bound yet by the process it was meant for): two servers would then race for it.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def port_is_free(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1 now (nothing listens on it any more)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True

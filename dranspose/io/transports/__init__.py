"""How ingesters (and ``dranspose capture``) read an upstream: ZMQ PULL or SUB, a TCP client, or an
HTTP server, chosen by the protocol (:attr:`dranspose.protocols.registry.Protocol.socket`).

:func:`open_upstream` makes the right :class:`~dranspose.io.transports.base.Upstream`; see
:mod:`dranspose.io.transports.base` for what each transport does when nobody reads, and the
transport modules for how each one reconnects. Protocol-specific framing is not here: the
protocol plug-ins point to it in ``dranspose/protocols/<name>/``.
"""

from __future__ import annotations

from typing import Optional

import zmq.asyncio

from dranspose.io.transports.base import DEFAULT_BACKLOG, Message, Upstream
from dranspose.protocols.registry import Protocol

__all__ = ["DEFAULT_BACKLOG", "Message", "Upstream", "open_upstream"]


def open_upstream(
    protocol: Protocol,
    url: str,
    *,
    name: str,
    ctx: Optional[zmq.asyncio.Context] = None,
    sub: Optional[bool] = None,
    backlog: int = DEFAULT_BACKLOG,
    regroup: bool = True,
) -> Upstream:
    """The upstream ``protocol`` is read with, for ``url``.

    ``sub`` forces (True) or refuses (False) a SUB socket for a ZMQ protocol; ``None`` follows
    the protocol. ``regroup=False`` keeps transport messages as they came (a raw capture), not
    regrouped by the protocol's framer. ZMQ upstreams need ``ctx``. Raises ``ValueError`` for an
    address the transport cannot use and ``OSError`` when an HTTP address cannot be listened on.
    """
    options = {"name": name, "backlog": backlog, "regroup": regroup}
    if protocol.socket == "tcp":
        if sub:
            raise ValueError(f"protocol {protocol.name!r} is read over TCP, not from a SUB socket")
        from dranspose.io.transports.tcp_upstream import TcpUpstream

        return TcpUpstream(protocol, url, **options)  # type: ignore[arg-type]
    if protocol.socket == "http":
        if sub:
            raise ValueError(f"protocol {protocol.name!r} is posted over HTTP, not published")
        from dranspose.io.transports.http_upstream import HttpUpstream

        return HttpUpstream(protocol, url, **options)  # type: ignore[arg-type]
    if ctx is None:
        raise ValueError("a ZMQ upstream needs a zmq.asyncio.Context")
    from dranspose.io.transports.zmq_upstream import zmq_upstream

    use_sub = protocol.socket == "sub" if sub is None else sub
    return zmq_upstream(protocol, url, ctx, use_sub, **options)

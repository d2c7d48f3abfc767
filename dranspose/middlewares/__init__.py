"""Protocol parsers: turn the raw frames of a :class:`~dranspose.event.StreamData` into typed packets.

Each module handles one stream protocol (``stream1`` for STINS) and exposes a ``parse`` function.
Malformed input raises :class:`dranspose.middlewares.errors.ParseError`.
"""

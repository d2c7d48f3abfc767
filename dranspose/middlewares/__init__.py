"""Public import paths for the protocols' parsers (``dranspose.middlewares.stream1.parse`` and
the others), as payloads written for the original dranspose import them. The code lives in
:mod:`dranspose.protocols`, one package per protocol.
"""

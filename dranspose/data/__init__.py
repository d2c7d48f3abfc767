"""Public import paths for the protocols' packet models (``dranspose.data.stream1`` and the
others), as payloads written for the original dranspose import them. The code lives in
:mod:`dranspose.protocols`, one package per protocol.
"""

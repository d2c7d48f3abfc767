"""Typed packet models for the detector stream protocols dranspose understands.

Everything in this package is pure data: pydantic models and small encoders that build the frames
an ingester would forward. Nothing here does I/O; turning received frames into packets is the job
of :mod:`dranspose.middlewares`.
"""

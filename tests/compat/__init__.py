"""Compatibility with the original dranspose: payloads, captures, parameter files and REST
clients written for it, run against ours unchanged (see docs/payload-api.md)."""

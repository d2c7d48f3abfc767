"""Detector protocols, one package each (packets and parser together), the registry the
ingester consults (:mod:`dranspose.protocols.registry`) and shared codecs (``common``)."""

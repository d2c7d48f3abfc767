"""dranspose: distributed streaming map-reduce over detector event streams.

The package is split in layers, each importing only the ones below it (docs/architecture.md,
"The tree"; ``lint-imports`` checks it): :mod:`dranspose.core` (pure models and algorithms),
:mod:`dranspose.protocols` (one package per detector protocol: ``packets`` and ``parser``),
:mod:`dranspose.io` (Redis, the ZMQ data plane, capture files, upstream transports),
:mod:`dranspose.runtime` (the services) above :mod:`dranspose.http` (their HTTP apps),
:mod:`dranspose.tools` (replay, source, capture) and :mod:`dranspose.cli`.

``dranspose.event``, ``.protocol``, ``.parameters``, ``.replay``, ``.data.*`` and
``.middlewares.*`` are the import paths payloads use (the original dranspose's): re-exports only.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dranspose")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

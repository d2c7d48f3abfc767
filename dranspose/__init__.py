"""dranspose: distributed streaming map-reduce over detector event streams.

The package is split by responsibility:

* pure models and algorithms, no I/O: :mod:`dranspose.core.protocol`, :mod:`dranspose.core.event`,
  :mod:`dranspose.core.parameters`, :mod:`dranspose.data` (protocol packets)
* protocol parsers: :mod:`dranspose.middlewares`
* file formats: :mod:`dranspose.io.capture` (``.cbors`` ingester dumps)
* running user payloads: :mod:`dranspose.core.payload` and the offline runner :mod:`dranspose.tools.replay`
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dranspose")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

"""The ``dranspose`` command line: argument parsing, handing over to the tools and runtime."""

from dranspose.cli.main import main

__all__ = ["main"]

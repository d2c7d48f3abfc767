"""``dranspose.parameters``: a public import path kept for payloads; the code lives in
:mod:`dranspose.core.parameters`."""

from dranspose.core.parameters import (  # noqa: F401
    logger,
    MAX_PARAMETER_BYTES,
    ParameterError,
    ParameterValueError,
    ParameterBase,
    IntParameter,
    FloatParameter,
    StrParameter,
    BoolParameter,
    BinaryParameter,
    FileParameter,
    ParameterType,
    ParameterDescription,
    describe,
    ParameterSet,
    PARAMETER_FILE_FORMATS,
    read_parameter_file,
)

__all__ = [
    "logger",
    "MAX_PARAMETER_BYTES",
    "ParameterError",
    "ParameterValueError",
    "ParameterBase",
    "IntParameter",
    "FloatParameter",
    "StrParameter",
    "BoolParameter",
    "BinaryParameter",
    "FileParameter",
    "ParameterType",
    "ParameterDescription",
    "describe",
    "ParameterSet",
    "PARAMETER_FILE_FORMATS",
    "read_parameter_file",
]

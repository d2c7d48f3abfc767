"""``dranspose.parameters``: a public import path kept for payloads; the code lives in
:mod:`dranspose.core.parameters`."""

from dranspose.core.parameters import (
    MAX_PARAMETER_BYTES,
    PARAMETER_FILE_FORMATS,
    BinaryParameter,
    BoolParameter,
    FileParameter,
    FloatParameter,
    IntParameter,
    ParameterBase,
    ParameterDescription,
    ParameterError,
    ParameterSet,
    ParameterType,
    ParameterValueError,
    StrParameter,
    describe,
    logger,
    read_parameter_file,
)

__all__ = [
    "MAX_PARAMETER_BYTES",
    "PARAMETER_FILE_FORMATS",
    "BinaryParameter",
    "BoolParameter",
    "FileParameter",
    "FloatParameter",
    "IntParameter",
    "ParameterBase",
    "ParameterDescription",
    "ParameterError",
    "ParameterSet",
    "ParameterType",
    "ParameterValueError",
    "StrParameter",
    "describe",
    "logger",
    "read_parameter_file",
]

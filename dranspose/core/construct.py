"""Building pydantic models from values that were already checked, on the per-event hot paths.

``BaseModel.model_construct`` skips validation but still walks the model's fields in Python
(defaults, aliases, the fields set): about 3 µs per object with pydantic 2, more than validating
the same small model in pydantic-core. A worker builds two or three such objects per event
(the stream's frames, the partial event, the full event), so at thousands of events per second
that walk was the largest single cost of a worker. :func:`trusted` sets the instance's state
directly, as ``model_construct`` ends up doing, in about a third of the time.

The caller passes *every* field (no defaults are filled in) with values of the declared types;
``tests/test_construct.py`` checks that each hot-path use builds an object equal to the one
``model_construct`` builds. Anything that comes from outside goes through validation instead.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_set = object.__setattr__
_new = object.__new__
# BaseModel keeps its per-instance state in slots: their descriptors set them without the
# attribute lookup by name that ``object.__setattr__`` does (a third of this function's time)
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def trusted(cls: type[M], values: dict[str, Any]) -> M:
    """An instance of ``cls`` holding ``values`` (all of its fields, already valid), unchecked.

    ``values`` becomes the instance's ``__dict__``: the caller hands it over and does not keep
    using it.
    """
    model = _new(cls)
    _set(model, "__dict__", values)
    _set_fields_set(model, set(values))
    _set_extra(model, None)
    _set_private(model, None)
    return model

"""The two errors of the trigger-map package and the helpers that word their messages.

Kept apart from the schema, the map and the assigner so each of them can raise and phrase errors
the same way without importing one another.
"""

from __future__ import annotations

from typing import Any, Iterable


class TriggerMapError(ValueError):
    """A trigger map is malformed or cannot be served; the message names the place at fault."""


class AssignmentError(ValueError):
    """The assigner was asked something impossible: an unknown worker, an unknown completion."""


def show(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: user input quoted in a message stays short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tag_list(tags: Iterable[str]) -> str:
    """Tags as a sorted list literal, so the same set always reads the same in messages."""
    return "[" + ", ".join(repr(t) for t in sorted(tags)) + "]"

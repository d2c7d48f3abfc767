"""A log record as the components store and serve it, and the level names: pure data.

The components ship their records to Redis (:mod:`dranspose.runtime.logs`), the store keeps them
(:mod:`dranspose.io.store`) and the HTTP API serves them (:mod:`dranspose.http.logs_api`): the
record's model lives here, below all three, so none of them imports another's layer for it.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel

__all__ = ["LEVELS", "LogEntry", "parse_level"]

LEVELS: dict[str, int] = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


def parse_level(text: str) -> int:
    """``"warning"`` -> 30; a clear ValueError for anything but the five standard names."""
    level = LEVELS.get(text.strip().upper())
    if level is None:
        raise ValueError(
            f"unknown log level {text!r}; expected one of {', '.join(LEVELS)} (case-insensitive)"
        )
    return level


class LogEntry(BaseModel):
    """One record as stored in Redis and served by ``/api/v1/logs`` (``levelno`` for filtering)."""

    time: float
    component: str
    level: str
    levelno: int
    logger: str
    message: str
    lineno: int = 0

    def public(self, entry_id: str) -> dict[str, object]:
        """The API's record: the stream id and the five documented fields, and the original
        dranspose's names for them (``logging.LogRecord``'s, strings as it served them)."""
        return {
            "id": entry_id,
            "time": self.time,
            "component": self.component,
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "created": str(self.time),
            "levelname": self.level,
            "name": self.logger,
            "msg": self.message,
            "lineno": str(self.lineno),
        }

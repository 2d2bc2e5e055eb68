"""Structured logging for the server: JSON lines on stderr, and warnings that fire once per offender.

`configure_logging` is called by the CLI; `OnceLog` by the ingest path (unknown clients, foreign schemas).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime


class JsonLineFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg"}` per line; audit lines (already JSON) pass through untouched."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == "spinal_server.audit":
            return message
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": message,
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure_logging(level: str = "info", *, audit: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("spinal_server.audit").setLevel(logging.INFO if audit else logging.WARNING)


class OnceLog:
    """Logs a warning the first time a key is seen; remembers at most `limit` keys, then says it stopped."""

    def __init__(self, logger: logging.Logger, limit: int = 1024) -> None:
        self._logger = logger
        self._limit = limit
        self._seen: set[object] = set()
        self._lock = threading.Lock()
        self._saturated = False

    def warn(self, key: object, message: str, *args: object) -> bool:
        with self._lock:
            if key in self._seen:
                return False
            if len(self._seen) >= self._limit:
                if not self._saturated:
                    self._saturated = True
                    self._logger.warning(
                        "more than %d distinct offenders; further ones are counted, not logged", self._limit
                    )
                return False
            self._seen.add(key)
        self._logger.warning(message, *args)
        return True

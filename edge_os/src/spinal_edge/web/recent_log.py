"""The daemon's recent log lines, kept in memory for the System page (secrets never reach the log).

Installed on the root logger by `mount_setup_page`; on a device the full log is in the journal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque


class RecentLog(logging.Handler):
    """The last `capacity` records as `HH:MM:SS LEVEL logger: message` lines."""

    def __init__(self, capacity: int = 300) -> None:
        super().__init__(level=logging.INFO)
        self._lines: deque[str] = deque(maxlen=capacity)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        except Exception:  # a bad format string in some library must not break logging
            return
        with self._guard:
            self._lines.append(line[:1000])

    def lines(self, n: int = 200) -> list[str]:
        with self._guard:
            return list(self._lines)[-n:]

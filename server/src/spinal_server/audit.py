"""The audit trail: one JSON line per request on the `spinal_server.audit` logger, written off the worker thread.

Joins with client logs on (session_id, seq_id); `ts` is this server's own clock and never compared across machines.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

audit_log = logging.getLogger("spinal_server.audit")


@dataclass(slots=True)
class AuditRecord:
    """What happened to one observation; `chunk_range` = [first, end) steps the client will execute."""

    session_id: str
    client_uuid: str
    seq_id: int
    episode_id: int
    session_epoch: int
    queue_wait_ms: float
    inference_ms: float
    chunk_range: list[int]
    superseded_seqs: int
    batch_size: int
    outcome: str
    wall_time: float = field(default_factory=time.time)

    def to_json(self) -> str:
        fields = asdict(self)
        fields.pop("wall_time")
        fields["queue_wait_ms"] = round(self.queue_wait_ms, 3)
        fields["inference_ms"] = round(self.inference_ms, 3)
        ts = datetime.fromtimestamp(self.wall_time, UTC).isoformat(timespec="microseconds")
        return json.dumps({"ts": ts, **fields})


class AuditTrail:
    """Formats and logs records on its own thread, so JSON and log I/O overlap the next forward."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[AuditRecord | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="spinal-audit", daemon=True)
        self._thread.start()

    def write(self, record: AuditRecord) -> None:
        self._queue.put(record)

    def close(self, timeout: float = 5.0) -> None:
        """Write everything queued so far, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (record := self._queue.get()) is not None:
            if audit_log.isEnabledFor(logging.INFO):
                audit_log.info(record.to_json())

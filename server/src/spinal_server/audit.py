"""The audit trail: one JSON line per request on the `spinal_server.audit` logger.

Joins with client logs on (session_id, seq_id); `ts` is this server's own clock and never compared across machines.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
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

    def to_json(self) -> str:
        fields = asdict(self)
        fields["queue_wait_ms"] = round(self.queue_wait_ms, 3)
        fields["inference_ms"] = round(self.inference_ms, 3)
        return json.dumps({"ts": datetime.now(UTC).isoformat(timespec="microseconds"), **fields})


def write_audit(record: AuditRecord) -> None:
    if audit_log.isEnabledFor(logging.INFO):
        audit_log.info(record.to_json())

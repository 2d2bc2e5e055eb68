"""JSON log lines: one object per line with the extra fields, secrets redacted."""

from __future__ import annotations

import io
import json
import logging

from spinal_edge.logs import setup_logging


def test_records_become_json_lines_with_extra_fields_and_no_secrets() -> None:
    stream = io.StringIO()
    setup_logging("info", json_lines=True, stream=stream)
    try:
        log = logging.getLogger("spinal_edge.test")
        log.info("mode changed", extra={"mode": "policy", "token": "s3cret-value", "joints": (1, 2)})
        log.debug("not shown")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("tick failed")
    finally:
        logging.getLogger().handlers.clear()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["msg"] == "mode changed" and first["level"] == "info" and first["mode"] == "policy"
    assert first["joints"] == [1, 2]
    assert first["token"] == "[redacted]" and "s3cret-value" not in stream.getvalue()
    second = json.loads(lines[1])
    assert second["level"] == "error" and "ValueError: boom" in second["exc"]

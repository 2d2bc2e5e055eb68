"""The checks staged annotations must pass before anything is written into the dataset.

Exact frame timestamps, column routing per module, camera rules, interjection/speech/plan pairing, VQA
answer shapes and uniqueness, distinct subtask starts. Used by the pipeline before the writer.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spinal.annotate.prompts import vqa_answer_problem
from spinal.language.errors import LanguageError
from spinal.language.rows import validate_row
from spinal.language.schema import LANGUAGE_PERSISTENT
from spinal.language.styles import column_for_style
from spinal.language.tools import SAY_TOOL_NAME

Row = dict[str, Any]
_ROLE_OF_STYLE = {
    "task_aug": "user",
    "subtask": "assistant",
    "plan": "assistant",
    "memory": "assistant",
    "interjection": "user",
}


@dataclass
class ValidationReport:
    """Errors block the write; warnings are reported and the write goes on."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def extend(self, other: ValidationReport) -> None:
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)


def _key(t: float) -> bytes:
    return np.float32(t).tobytes()


def _is_speech_atom(row: Row) -> bool:
    if row.get("style") is not None or row.get("role") != "assistant" or row.get("content") is not None:
        return False
    calls = row.get("tool_calls")
    if not isinstance(calls, list) or len(calls) != 1 or not isinstance(calls[0], dict):
        return False
    call = calls[0]
    function = call.get("function")
    return (
        call.get("type") == "function"
        and isinstance(function, dict)
        and function.get("name") == SAY_TOOL_NAME
        and isinstance(function.get("arguments"), dict)
        and isinstance(function["arguments"].get("text"), str)
        and bool(function["arguments"]["text"].strip())
    )


def validate_episode(
    episode: int,
    modules: Mapping[str, Sequence[Row]],
    *,
    frame_times: Iterable[float],
    camera_keys: Sequence[str],
    module_columns: Mapping[str, str],
) -> ValidationReport:
    """Check one episode's staged rows (module name → rows, each with its frame `timestamp`)."""
    report = ValidationReport()
    frames = {_key(t) for t in frame_times}
    persistent: list[Row] = []
    events: list[Row] = []

    def err(msg: str) -> None:
        report.errors.append(f"episode {episode}: {msg}")

    for module, rows in modules.items():
        expected = module_columns.get(module)
        for row in rows:
            style, t = row.get("style"), row.get("timestamp")
            where = f"{module} row (style={style}, role={row.get('role')}, t={t})"
            if not isinstance(t, int | float) or isinstance(t, bool):
                err(f"{where} has no timestamp")
                continue
            if _key(t) not in frames:
                err(f"{where} is not on a frame timestamp; use the exact parquet timestamp")
            try:
                column = column_for_style(style)
                if expected is not None and column != expected:
                    err(f"{where} routes to {column} but module {module} must produce {expected} rows")
                    continue
                validate_row(
                    row
                    if column == LANGUAGE_PERSISTENT
                    else {k: v for k, v in row.items() if k != "timestamp"},
                    column,
                )
            except LanguageError as exc:
                err(f"{where}: {exc}")
                continue
            camera = row.get("camera")
            if camera is not None and camera not in camera_keys:
                err(
                    f"{where} names camera {camera!r}, which the dataset does not record ({list(camera_keys)})"
                )
            wanted_role = _ROLE_OF_STYLE.get(style or "")
            if wanted_role and row.get("role") != wanted_role:
                err(f"{where} must have role {wanted_role}")
            (persistent if column == LANGUAGE_PERSISTENT else events).append(row)

    # Persistent styles are resolved with active_at: two emissions on one frame would be ambiguous.
    for style in ("subtask", "plan", "memory"):
        counts = Counter(_key(r["timestamp"]) for r in persistent if r.get("style") == style)
        for k, n in counts.items():
            if n > 1:
                err(
                    f"{n} {style} rows start at t={float(np.frombuffer(k, np.float32)[0])}; starts must be on distinct frames"
                )

    by_time: dict[bytes, list[Row]] = defaultdict(list)
    for row in events:
        by_time[_key(row["timestamp"])].append(row)
    plan_times = {_key(r["timestamp"]) for r in persistent if r.get("style") == "plan"}
    subtask_times = {_key(r["timestamp"]) for r in persistent if r.get("style") == "subtask"}
    for k, rows in by_time.items():
        t = float(np.frombuffer(k, np.float32)[0])
        atoms = [r for r in rows if r.get("style") is None]
        for atom in atoms:
            if not _is_speech_atom(atom):
                err(
                    f"speech atom at t={t} is malformed: it needs role=assistant, content=null and one say(text) call"
                )
        interjections = [r for r in rows if r.get("style") == "interjection"]
        if interjections and not atoms:
            err(f"interjection at t={t} has no speech atom at the same timestamp")
        if interjections and k not in plan_times:
            err(f"interjection at t={t} has no plan at the same timestamp")
        if len(interjections) > 1:
            err(f"{len(interjections)} interjections at t={t}; at most one per frame")
        vqa = [r for r in rows if r.get("style") == "vqa"]
        seen = Counter((r.get("camera"), r.get("role")) for r in vqa)
        for (camera, role), n in seen.items():
            if n > 1:
                err(f"{n} vqa {role} rows for {camera} at t={t}; at most one per (t, camera, role)")
        for camera in {r.get("camera") for r in vqa}:
            roles = {r.get("role") for r in vqa if r.get("camera") == camera}
            if roles != {"user", "assistant"}:
                err(
                    f"vqa at t={t} for {camera} needs a user question and an assistant answer; found {sorted(roles)}"
                )
        for row in vqa:
            if row.get("role") != "assistant":
                continue
            try:
                answer = json.loads(row.get("content") or "")
            except ValueError:
                err(f"vqa answer at t={t} for {row.get('camera')} is not valid JSON")
                continue
            problem = vqa_answer_problem(None, answer)
            if problem:
                err(f"vqa answer at t={t} for {row.get('camera')}: {problem}")
    for row in persistent:
        if row.get("style") == "memory" and _key(row["timestamp"]) not in subtask_times:
            report.warnings.append(
                f"episode {episode}: memory at t={row['timestamp']} is not on a subtask boundary"
            )
    return report

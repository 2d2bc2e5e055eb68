"""Language rows as plain dicts: normalising what a reader hands back and validating what a writer gets.

Used by the renderer (normalise), the column writer and the pipeline validator (validate).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from spinal.language.errors import RowError
from spinal.language.schema import LANGUAGE_PERSISTENT, ROLES, LanguageColumn
from spinal.language.styles import column_for_style, validate_camera_field

Row = dict[str, Any]


def parse_tool_call(call: Any) -> Any:
    """A tool call as a dict: JSON strings (the json/string Arrow fallbacks) are parsed, others kept."""
    if isinstance(call, str):
        try:
            return json.loads(call)
        except ValueError:
            return call
    return call


def normalize_rows(rows: Iterable[Any] | None) -> list[Row]:
    """Rows as shallow-copied dicts: drop None, unwrap pyarrow scalars, parse stringified tool calls."""
    if rows is None:
        return []
    out: list[Row] = []
    for row in rows:
        if row is None:
            continue
        if hasattr(row, "as_py"):
            row = row.as_py()
            if row is None:
                continue
        if not isinstance(row, dict):
            raise TypeError(f"Language rows must be dictionaries, got {type(row).__name__}.")
        row = dict(row)
        calls = row.get("tool_calls")
        if isinstance(calls, list):
            row["tool_calls"] = [parse_tool_call(c) for c in calls]
        out.append(row)
    return out


def row_sort_key(row: Row) -> tuple[float, str, str, str]:
    """The one ordering of rows everywhere: timestamp (events: 0), style, role, camera."""
    return (
        float(row.get("timestamp") or 0.0),
        row.get("style") or "",
        row.get("role") or "",
        row.get("camera") or "",
    )


def validate_row(row: Row, column: LanguageColumn) -> None:
    """Raise `RowError`/`CameraFieldError`/`UnknownStyleError` unless `row` is a well-formed row of `column`."""
    role = row.get("role")
    if role not in ROLES:
        raise RowError(f"Language row role {role!r} is invalid; use one of {sorted(ROLES)}.")
    style = row.get("style")
    actual = column_for_style(style)
    if actual != column:
        raise RowError(f"A row of style {style!r} belongs in {actual!r}, not {column!r}.")
    content, calls = row.get("content"), row.get("tool_calls")
    if content is not None and not isinstance(content, str):
        raise RowError(f"Language row content must be a string or null; got {type(content).__name__}.")
    if calls is not None and not isinstance(calls, list):
        raise RowError(f"Language row tool_calls must be a list or null; got {type(calls).__name__}.")
    if content is None and not calls:
        raise RowError(f"A language row needs content or tool_calls (style {style!r}, role {role!r}).")
    if style is None and not calls:
        raise RowError("A style-less language row is a tool-call atom and needs tool_calls.")
    validate_camera_field(style, row.get("camera"))
    if column == LANGUAGE_PERSISTENT:
        ts = row.get("timestamp")
        if not isinstance(ts, int | float) or isinstance(ts, bool) or not math.isfinite(ts):
            raise RowError(
                f"A persistent row needs a finite numeric timestamp; got {ts!r} (style {style!r})."
            )

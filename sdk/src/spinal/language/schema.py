"""The on-disk schema of the two language columns: names, row fields and their Arrow types.

Used by the column writer and reader, and by anything that builds `meta/info.json` features.
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa

LANGUAGE_PERSISTENT: Literal["language_persistent"] = "language_persistent"
LANGUAGE_EVENTS: Literal["language_events"] = "language_events"
LANGUAGE_COLUMNS: tuple[str, str] = (LANGUAGE_PERSISTENT, LANGUAGE_EVENTS)
LanguageColumn = Literal["language_persistent", "language_events"]

# Field orders are part of the contract: readers compare struct types field by field.
PERSISTENT_ROW_FIELDS: tuple[str, ...] = ("role", "content", "style", "timestamp", "camera", "tool_calls")
EVENT_ROW_FIELDS: tuple[str, ...] = ("role", "content", "style", "camera", "tool_calls")

ROLES: frozenset[str] = frozenset({"user", "assistant", "system", "tool"})

# The `huggingface` features LeRobot stores in info.json for both columns.
LANGUAGE_FEATURE_DTYPE = "language"


def json_arrow_type() -> pa.DataType:
    """The element type of `tool_calls`: Arrow's JSON extension type where pyarrow has it, else string."""
    json_ = getattr(pa, "json_", None)
    return json_() if json_ is not None else pa.string()


def _row_fields(with_timestamp: bool) -> list[pa.Field]:
    fields = [
        pa.field("role", pa.string(), nullable=False),
        pa.field("content", pa.string(), nullable=True),
        pa.field("style", pa.string(), nullable=True),
    ]
    if with_timestamp:
        fields.append(pa.field("timestamp", pa.float32(), nullable=False))
    fields.append(pa.field("camera", pa.string(), nullable=True))
    fields.append(pa.field("tool_calls", pa.list_(json_arrow_type()), nullable=True))
    return fields


def language_persistent_row_arrow_type() -> pa.StructType:
    """One persistent row: role, content, style, timestamp (float32), camera, tool_calls."""
    return pa.struct(_row_fields(with_timestamp=True))


def language_event_row_arrow_type() -> pa.StructType:
    """One event row: the persistent row without `timestamp` (the frame gives the time)."""
    return pa.struct(_row_fields(with_timestamp=False))


def language_persistent_arrow_type() -> pa.ListType:
    """The `language_persistent` column type: a list of persistent rows per frame."""
    return pa.list_(language_persistent_row_arrow_type())


def language_events_arrow_type() -> pa.ListType:
    """The `language_events` column type: a list of event rows per frame."""
    return pa.list_(language_event_row_arrow_type())


def arrow_type_for_column(column: str) -> pa.ListType:
    """The Arrow type of a language column by name."""
    if column == LANGUAGE_PERSISTENT:
        return language_persistent_arrow_type()
    if column == LANGUAGE_EVENTS:
        return language_events_arrow_type()
    raise KeyError(f"{column!r} is not a language column; use one of {LANGUAGE_COLUMNS}.")


def row_fields_for_column(column: str) -> tuple[str, ...]:
    """The ordered row fields of a language column."""
    return PERSISTENT_ROW_FIELDS if column == LANGUAGE_PERSISTENT else EVENT_ROW_FIELDS


def is_language_column(key: str) -> bool:
    """True for the two language column names."""
    return key in LANGUAGE_COLUMNS


def language_feature_info() -> dict[str, dict[str, Any]]:
    """The `meta/info.json` feature entries of both columns (dtype "language", shape [1])."""
    return {name: {"dtype": LANGUAGE_FEATURE_DTYPE, "shape": [1], "names": None} for name in LANGUAGE_COLUMNS}

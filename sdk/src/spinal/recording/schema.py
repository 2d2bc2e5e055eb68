"""Column layout of the frames stream (`frames.arrows`): one row per control-loop tick.

Shared by the writer (which builds record batches), recovery (which rebuilds a torn schema) and the reader.
"""

from __future__ import annotations

from typing import NamedTuple

import pyarrow as pa

from spinal.recording.metadata import FORMAT_VERSION

TIMESTAMP = "timestamp"
FRAME_INDEX = "frame_index"
STATE = "observation.state"
ACTION = "action"
MODE = "mode"
SOURCE_SESSION = "action_source.session_id"
SOURCE_SEQ = "action_source.seq_id"
SOURCE_EPISODE = "action_source.episode_id"

#: Arrow IPC end-of-stream marker (continuation token + zero length).
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"


class ActionSource(NamedTuple):
    """Where a policy action came from: the inference session, the chunk's sequence id and episode id."""

    session_id: str
    seq_id: int
    episode_id: int


def frames_schema() -> pa.Schema:
    """The schema of every frames stream of this format version (joint counts live in episode.json)."""
    fields = [
        pa.field(TIMESTAMP, pa.float64(), nullable=False),
        pa.field(FRAME_INDEX, pa.int64(), nullable=False),
        pa.field(STATE, pa.list_(pa.float32()), nullable=False),
        pa.field(ACTION, pa.list_(pa.float32()), nullable=False),
        pa.field(MODE, pa.string(), nullable=False),
        pa.field(SOURCE_SESSION, pa.string()),
        pa.field(SOURCE_SEQ, pa.int64()),
        pa.field(SOURCE_EPISODE, pa.int64()),
    ]
    return pa.schema(fields, metadata={"spinal.recording.format_version": str(FORMAT_VERSION)})


def check_schema(schema: pa.Schema) -> str | None:
    """None when `schema` has every column this reader needs with the right type, else what is wrong."""
    expected = frames_schema()
    for field in expected:
        index = schema.get_field_index(field.name)
        if index < 0:
            return f"column {field.name!r} is missing"
        if not schema.field(index).type.equals(field.type):
            return f"column {field.name!r} is {schema.field(index).type}, expected {field.type}"
    return None

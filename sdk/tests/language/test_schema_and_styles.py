"""Schema, style routing, camera rules and the tool catalog of spinal.language."""

from __future__ import annotations

import pyarrow as pa
import pytest
from spinal.language import (
    CORE_STYLES,
    DEFAULT_TOOLS,
    EVENT_ONLY_STYLES,
    EVENT_ROW_FIELDS,
    LANGUAGE_EVENTS,
    LANGUAGE_PERSISTENT,
    PERSISTENT_ROW_FIELDS,
    PERSISTENT_STYLES,
    SAY_TOOL_SCHEMA,
    VIEW_DEPENDENT_STYLES,
    CameraFieldError,
    RowError,
    UnknownStyleError,
    column_for_style,
    is_language_column,
    is_view_dependent_style,
    language_event_row_arrow_type,
    language_events_arrow_type,
    language_feature_info,
    language_persistent_arrow_type,
    language_persistent_row_arrow_type,
    speech_atom,
    validate_camera_field,
    validate_row,
)
from spinal.language.styles import EXTENDED_STYLES, register_style, style_registry
from spinal.language.tools import merge_default_tools, tool_name, tools_from_info


def test_persistent_row_has_six_fields_in_contract_order_and_types():
    row = language_persistent_row_arrow_type()
    assert tuple(f.name for f in row) == PERSISTENT_ROW_FIELDS
    assert PERSISTENT_ROW_FIELDS == ("role", "content", "style", "timestamp", "camera", "tool_calls")
    assert row.field("timestamp").type == pa.float32()
    assert not row.field("role").nullable and not row.field("timestamp").nullable
    assert all(row.field(n).nullable for n in ("content", "style", "camera", "tool_calls"))
    assert row.field("tool_calls").type == pa.list_(pa.json_())


def test_event_row_has_five_fields_and_no_timestamp():
    row = language_event_row_arrow_type()
    assert (
        tuple(f.name for f in row) == EVENT_ROW_FIELDS == ("role", "content", "style", "camera", "tool_calls")
    )
    assert language_events_arrow_type() == pa.list_(row)
    assert language_persistent_arrow_type() == pa.list_(language_persistent_row_arrow_type())


def test_info_feature_entries_declare_the_language_dtype():
    info = language_feature_info()
    assert info == {
        LANGUAGE_PERSISTENT: {"dtype": "language", "shape": [1], "names": None},
        LANGUAGE_EVENTS: {"dtype": "language", "shape": [1], "names": None},
    }
    assert is_language_column("language_events") and not is_language_column("task")


def test_style_sets_partition_the_registry():
    assert {"subtask", "plan", "memory", "motion", "task_aug"} == PERSISTENT_STYLES
    assert {"interjection", "vqa", "trace"} == EVENT_ONLY_STYLES
    assert style_registry() >= PERSISTENT_STYLES and style_registry() >= EVENT_ONLY_STYLES
    assert CORE_STYLES == PERSISTENT_STYLES | EVENT_ONLY_STYLES


@pytest.mark.parametrize("style", sorted(PERSISTENT_STYLES))
def test_persistent_styles_route_to_the_persistent_column(style):
    assert column_for_style(style) == LANGUAGE_PERSISTENT


@pytest.mark.parametrize("style", [*sorted(EVENT_ONLY_STYLES), None])
def test_event_styles_and_speech_route_to_the_events_column(style):
    assert column_for_style(style) == LANGUAGE_EVENTS


def test_unknown_style_is_rejected_by_name():
    with pytest.raises(UnknownStyleError, match="Unknown language style"):
        column_for_style("gesture")


def test_extended_style_routes_once_registered():
    try:
        register_style("gesture", LANGUAGE_EVENTS)
        assert column_for_style("gesture") == LANGUAGE_EVENTS
        with pytest.raises(UnknownStyleError):
            register_style("subtask", LANGUAGE_EVENTS)
    finally:
        EXTENDED_STYLES.pop("gesture", None)


def test_only_vqa_and_trace_are_view_dependent():
    assert {"vqa", "trace"} == VIEW_DEPENDENT_STYLES
    assert is_view_dependent_style("vqa") and is_view_dependent_style("trace")
    for style in ("motion", "subtask", "plan", "interjection", None):
        assert not is_view_dependent_style(style)


@pytest.mark.parametrize(("style", "camera"), [("vqa", None), ("trace", "")])
def test_view_dependent_rows_need_a_camera(style, camera):
    with pytest.raises(CameraFieldError, match="view-dependent"):
        validate_camera_field(style, camera)


@pytest.mark.parametrize("style", ["subtask", "motion", "interjection", None])
def test_other_rows_must_not_name_a_camera(style):
    with pytest.raises(CameraFieldError, match="must have camera=None"):
        validate_camera_field(style, "observation.images.top")
    validate_camera_field(style, None)


def test_say_schema_is_a_well_formed_function_tool():
    fn = SAY_TOOL_SCHEMA["function"]
    assert SAY_TOOL_SCHEMA["type"] == "function" and fn["name"] == "say"
    assert fn["parameters"]["required"] == ["text"]
    assert fn["parameters"]["properties"]["text"]["type"] == "string"
    assert DEFAULT_TOOLS == [SAY_TOOL_SCHEMA]


def test_speech_atom_has_the_contract_shape():
    atom = speech_atom("on my way")
    assert atom == {
        "role": "assistant",
        "content": None,
        "style": None,
        "camera": None,
        "tool_calls": [{"type": "function", "function": {"name": "say", "arguments": {"text": "on my way"}}}],
    }
    validate_row(atom, LANGUAGE_EVENTS)


def test_tool_catalog_falls_back_to_default_and_keeps_user_tools():
    assert tools_from_info({}) == DEFAULT_TOOLS
    wave = {
        "type": "function",
        "function": {"name": "wave", "parameters": {"type": "object", "properties": {}}},
    }
    assert tools_from_info({"tools": [wave]}) == [wave]
    merged = merge_default_tools([wave])
    assert [tool_name(t) for t in merged] == ["wave", "say"]
    assert merge_default_tools(merged) == merged
    assert tool_name('{"function": {"name": "say"}}') == "say"


def test_row_validation_names_what_is_wrong():
    with pytest.raises(RowError, match="role"):
        validate_row({"role": "robot", "content": "x", "style": "vqa", "camera": "c"}, LANGUAGE_EVENTS)
    with pytest.raises(RowError, match="belongs in"):
        validate_row(
            {"role": "assistant", "content": "x", "style": "subtask", "timestamp": 0.0}, LANGUAGE_EVENTS
        )
    with pytest.raises(RowError, match="content or tool_calls"):
        validate_row({"role": "assistant", "style": "plan", "timestamp": 0.0}, LANGUAGE_PERSISTENT)
    with pytest.raises(RowError, match="tool-call atom"):
        validate_row({"role": "assistant", "content": "hi", "style": None}, LANGUAGE_EVENTS)
    with pytest.raises(RowError, match="timestamp"):
        validate_row({"role": "assistant", "content": "x", "style": "plan"}, LANGUAGE_PERSISTENT)

"""Resolver semantics (active_at, emitted_at, nth_prev, nth_next) and robust parsing of resolver expressions."""

from __future__ import annotations

import json

import pytest
from spinal.language import (
    EMITTED_AT_TOLERANCE_S,
    AmbiguousResolverError,
    ResolverError,
    UnknownStyleError,
    active_at,
    emitted_at,
    nth_next,
    nth_prev,
    resolve_spec,
    speech_atom,
)
from spinal.language.resolvers import parse_resolver

TOP, WRIST = "observation.images.top", "observation.images.wrist"


def _p(style, content, t, role="assistant"):
    return {
        "role": role,
        "content": content,
        "style": style,
        "timestamp": t,
        "camera": None,
        "tool_calls": None,
    }


def _vqa(role, content, camera):
    return {"role": role, "content": content, "style": "vqa", "camera": camera, "tool_calls": None}


PERSISTENT = [
    _p("subtask", "subtask 0", 0.0),
    _p("subtask", "subtask 1", 1.0),
    _p("subtask", "subtask 2", 2.0),
    _p("memory", "memory 1", 1.0),
]


def test_active_at_gives_the_latest_emission_at_or_before_t():
    assert active_at(0.5, persistent=PERSISTENT, style="subtask")["content"] == "subtask 0"
    assert active_at(1.0, persistent=PERSISTENT, style="subtask")["content"] == "subtask 1"
    assert active_at(0.5, persistent=PERSISTENT, style="memory") is None


def test_emitted_at_misses_without_events_and_hits_the_vqa_answer_on_its_frame():
    answer = _vqa("assistant", '{"count": 1, "label": "cube"}', TOP)
    assert emitted_at(0.5, persistent=PERSISTENT, events=[], style="vqa", role="assistant") is None
    assert emitted_at(0.5, persistent=PERSISTENT, events=[answer], style="vqa", role="assistant") is answer


@pytest.mark.parametrize(
    "call",
    [
        lambda: active_at(0.5, persistent=PERSISTENT, style="vqa"),
        lambda: nth_prev(0.5, persistent=PERSISTENT, style="interjection"),
    ],
)
def test_persistent_resolvers_refuse_event_only_styles(call):
    with pytest.raises(ResolverError, match="event-only"):
        call()


def test_persistent_resolvers_refuse_no_style_and_unknown_styles():
    with pytest.raises(ResolverError, match="requires a persistent style"):
        active_at(0.5, persistent=PERSISTENT, style=None)
    with pytest.raises(UnknownStyleError, match="Unknown language style"):
        nth_next(0.5, persistent=PERSISTENT, style="dance")


def test_nth_prev_and_nth_next_step_from_the_active_row():
    assert nth_prev(1.0, persistent=PERSISTENT, style="subtask", offset=1)["content"] == "subtask 0"
    assert nth_next(0.0, persistent=PERSISTENT, style="subtask", offset=1)["content"] == "subtask 1"
    assert nth_next(0.0, persistent=PERSISTENT, style="subtask", offset=2)["content"] == "subtask 2"
    assert nth_prev(0.5, persistent=PERSISTENT, style="subtask") is None
    assert nth_next(2.5, persistent=PERSISTENT, style="subtask") is None


def test_nth_next_before_the_first_row_returns_the_first_and_nth_prev_none():
    late = [_p("subtask", "late", 2.0)]
    assert nth_next(1.0, persistent=late, style="subtask")["content"] == "late"
    assert nth_prev(1.0, persistent=late, style="subtask") is None


def test_nth_offsets_must_be_positive():
    for offset in (0, -1):
        with pytest.raises(ResolverError, match="non-zero"):
            nth_prev(1.0, persistent=PERSISTENT, style="subtask", offset=offset)


def test_emitted_at_filters_by_camera_and_is_ambiguous_without_it():
    events = [
        _vqa("user", "q top", TOP),
        _vqa("assistant", "a top", TOP),
        _vqa("user", "q wrist", WRIST),
        _vqa("assistant", "a wrist", WRIST),
    ]
    hit = emitted_at(1.0, persistent=[], events=events, style="vqa", role="assistant", camera=WRIST)
    assert hit["content"] == "a wrist"
    with pytest.raises(AmbiguousResolverError, match="Ambiguous resolver.*role=assistant"):
        emitted_at(1.0, persistent=[], events=events, style="vqa", role="assistant")


def test_persistent_emitted_at_tolerates_small_drift_only():
    rows = [_p("plan", "plan A", 1.0)]
    assert (
        emitted_at(1.0 + 0.5 * EMITTED_AT_TOLERANCE_S, persistent=rows, events=[], style="plan") is not None
    )
    assert emitted_at(1.0 + 2 * EMITTED_AT_TOLERANCE_S, persistent=rows, events=[], style="plan") is None


def test_persistent_emitted_at_picks_the_nearest_of_two_close_emissions():
    rows = [_p("plan", "plan A", 1.0), _p("plan", "plan B", 1.05)]
    assert emitted_at(1.05, persistent=rows, events=[], style="plan")["content"] == "plan B"
    assert emitted_at(1.0, persistent=rows, events=[], style="plan")["content"] == "plan A"


def test_tool_name_matches_tool_calls_stored_as_json_strings():
    atom = speech_atom("hello")
    stringified = {**atom, "tool_calls": [json.dumps(c) for c in atom["tool_calls"]]}
    for row in (atom, stringified):
        assert emitted_at(0.0, persistent=[], events=[row], role="assistant", tool_name="say") is row
    assert emitted_at(0.0, persistent=[], events=[stringified], tool_name="wave") is None


def test_active_at_with_two_rows_on_one_timestamp_raises_ambiguity():
    rows = [_p("subtask", "a", 1.0), _p("subtask", "b", 1.0)]
    with pytest.raises(AmbiguousResolverError):
        active_at(1.5, persistent=rows, style="subtask")


def test_resolve_spec_evaluates_expressions():
    assert (
        resolve_spec("active_at(t, style=subtask)", persistent=PERSISTENT, events=[], t=1.2)["content"]
        == "subtask 1"
    )
    assert (
        resolve_spec("nth_prev(style=subtask, offset=2)", persistent=PERSISTENT, events=[], t=2.0)["content"]
        == "subtask 0"
    )


def test_parser_keeps_quoted_values_with_commas():
    call = parse_resolver("emitted_at(t, style=vqa, role='user', camera=\"cam, left\")")
    assert (call.style, call.role, call.camera) == ("vqa", "user", "cam, left")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("active_at(t, style=subtask, colour=red)", "Unknown keyword 'colour'"),
        ("emitted_at(t, style=vqa, offset=1)", "Unknown keyword 'offset'"),
        ("nth_prev(t, style=subtask, offset=-1)", "positive integer"),
        ("nth_prev(t, style=subtask, offset=two)", "positive integer"),
        ("latest(t, style=subtask)", "Unknown language resolver"),
        ("active_at t style=subtask", "Invalid resolver expression"),
        ("active_at(t, style=subtask, style=plan)", "given twice"),
        ("active_at(t, style='subtask)", "unterminated"),
        ("active_at(t,, style=subtask)", "empty argument"),
        ("active_at(t, style=vqa)", "event-only"),
    ],
)
def test_parser_rejects_bad_expressions_with_a_clear_error(spec, message):
    with pytest.raises(ResolverError, match=message):
        parse_resolver(spec)

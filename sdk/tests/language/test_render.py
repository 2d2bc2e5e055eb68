"""render_sample: substitution, tool calls, streams and targets, blends, per-camera VQA and task_aug rotation."""

from __future__ import annotations

import pytest
from spinal.language import MessageTurn, RenderError, TrainingRecipe, render_sample, speech_atom
from spinal.language.recipe import load_shipped_recipe
from spinal.language.render import resolve_task, select_recipe

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


def _e(style, content, role, camera=None):
    return {"role": role, "content": content, "style": style, "camera": camera, "tool_calls": None}


PERSISTENT = [_p("subtask", "subtask 0", 0.0), _p("subtask", "subtask 1", 1.0), _p("plan", "1. wipe", 0.0)]


def _recipe(*turns, **kw):
    return TrainingRecipe(messages=[MessageTurn(**t) for t in turns], **kw)


def test_multimodal_block_text_is_substituted():
    recipe = _recipe(
        {
            "role": "user",
            "stream": "high_level",
            "content": [
                {"type": "image", "feature": TOP},
                {"type": "text", "text": "${task}: ${interjection}"},
            ],
        },
        {"role": "assistant", "content": "${subtask}", "stream": "high_level", "target": True},
    )
    out = render_sample(
        recipe=recipe,
        persistent=PERSISTENT,
        events=[_e("interjection", "skip wiping", "user")],
        t=0.5,
        sample_idx=0,
        task="clean kitchen",
    )
    assert out["messages"][0]["content"] == [
        {"type": "image", "feature": TOP},
        {"type": "text", "text": "clean kitchen: skip wiping"},
    ]


def test_tool_calls_from_attaches_the_say_call():
    recipe = _recipe(
        {"role": "user", "content": "${interjection}", "stream": "high_level"},
        {
            "role": "assistant",
            "content": "${plan}",
            "stream": "high_level",
            "target": True,
            "tool_calls_from": "speech",
        },
    )
    events = [_e("interjection", "stop", "user"), speech_atom("Stopping now.")]
    out = render_sample(recipe=recipe, persistent=PERSISTENT, events=events, t=0.5, sample_idx=0)
    assert out["messages"][1]["tool_calls"][0]["function"] == {
        "name": "say",
        "arguments": {"text": "Stopping now."},
    }


def test_streams_and_target_indices_follow_the_turns():
    recipe = _recipe(
        {"role": "user", "content": "${task}", "stream": "high_level"},
        {"role": "assistant", "content": "${subtask}", "stream": "low_level", "target": True},
    )
    out = render_sample(recipe=recipe, persistent=PERSISTENT, events=[], t=0.5, sample_idx=3, task="wipe")
    assert out == {
        "messages": [{"role": "user", "content": "wipe"}, {"role": "assistant", "content": "subtask 0"}],
        "message_streams": ["high_level", "low_level"],
        "target_message_indices": [1],
    }


def test_absent_target_under_if_present_renders_none():
    recipe = _recipe(
        {"role": "user", "content": "${task}", "stream": "high_level"},
        {
            "role": "assistant",
            "content": "${vqa}",
            "stream": "high_level",
            "target": True,
            "if_present": "vqa",
        },
    )
    assert (
        render_sample(recipe=recipe, persistent=PERSISTENT, events=[], t=0.5, sample_idx=0, task="x") is None
    )


def test_flow_only_low_level_turn_renders_without_target():
    recipe = _recipe({"role": "user", "content": "${subtask}", "stream": "low_level"})
    out = render_sample(recipe=recipe, persistent=PERSISTENT, events=[], t=1.5, sample_idx=0)
    assert (
        out["messages"] == [{"role": "user", "content": "subtask 1"}] and out["target_message_indices"] == []
    )


def _blend():
    def leaf(text, weight):
        return TrainingRecipe(
            messages=[MessageTurn(role="assistant", content=text, stream="high_level", target=True)],
            weight=weight,
        )

    return TrainingRecipe(blend={"a": leaf("A", 0.5), "b": leaf("B", 0.3), "c": leaf("C", 0.2)})


def test_blend_choice_is_deterministic_per_sample_and_uses_every_branch():
    recipe = _blend()
    first = [select_recipe(recipe, i)[0] for i in range(300)]
    assert first == [select_recipe(recipe, i)[0] for i in range(300)]
    counts = {n: first.count(n) for n in "abc"}
    assert counts["a"] > counts["b"] > counts["c"] > 0


def test_only_referenced_bindings_are_resolved():
    # Two cameras' VQA on this frame would make the default `vqa` binding ambiguous; a branch that never uses
    # it must still render.
    events = [
        _e("vqa", "q", "user", TOP),
        _e("vqa", "a", "assistant", TOP),
        _e("vqa", "q", "user", WRIST),
        _e("vqa", "a", "assistant", WRIST),
    ]
    recipe = _recipe({"role": "assistant", "content": "${subtask}", "stream": "high_level", "target": True})
    out = render_sample(recipe=recipe, persistent=PERSISTENT, events=events, t=1.0, sample_idx=0)
    assert out["messages"][0]["content"] == "subtask 1"


@pytest.mark.parametrize("camera", [TOP, WRIST])
def test_per_camera_blend_renders_each_view(camera):
    recipe = load_shipped_recipe("subtasks_vqa").for_cameras([TOP, WRIST])
    name = f"answer_question[{camera}]"
    component = TrainingRecipe(blend={name: recipe.blend[name]})
    events = [_e("vqa", f"q {c}", "user", c) for c in (TOP, WRIST)] + [
        _e("vqa", f"a {c}", "assistant", c) for c in (TOP, WRIST)
    ]
    out = render_sample(recipe=component, persistent=PERSISTENT, events=events, t=1.0, sample_idx=7)
    assert out["messages"][0]["content"] == [
        {"type": "image", "feature": camera},
        {"type": "text", "text": f"q {camera}"},
    ]
    assert out["messages"][1] == {"role": "assistant", "content": f"a {camera}"}


def test_unexpanded_per_camera_recipe_asks_for_cameras():
    with pytest.raises(ValueError, match="for_cameras"):
        render_sample(
            recipe=load_shipped_recipe("subtasks_vqa"), persistent=[], events=[], t=0.0, sample_idx=0
        )


AUG = [_p("task_aug", f"rephrasing {i}", 0.0, role="user") for i in range(4)]


def test_task_aug_rotates_through_every_rephrasing():
    seen = {resolve_task(None, {"task": "canonical"}, persistent=AUG, sample_idx=i) for i in range(64)}
    assert seen == {f"rephrasing {i}" for i in range(4)}


def test_task_aug_is_stable_per_sample():
    assert all(
        resolve_task(None, None, persistent=AUG, sample_idx=i)
        == resolve_task(None, None, persistent=AUG, sample_idx=i)
        for i in range(20)
    )


def test_without_task_aug_the_canonical_task_is_used():
    class Ctx:
        task = "object task"

    assert resolve_task(None, {"task": "canonical"}, persistent=PERSISTENT, sample_idx=5) == "canonical"
    assert resolve_task(None, Ctx(), persistent=[], sample_idx=5) == "object task"
    assert resolve_task(None, None, persistent=[], sample_idx=5) is None


def test_explicit_task_beats_rephrasings_unless_task_aug_is_preferred():
    assert resolve_task("explicit", None, persistent=AUG, sample_idx=1) == "explicit"
    assert resolve_task("explicit", None, persistent=AUG, sample_idx=1, prefer_task_aug=True).startswith(
        "rephrasing"
    )
    assert resolve_task("explicit", None, persistent=[], sample_idx=1, prefer_task_aug=True) == "explicit"


def test_canonical_low_level_branch_renders_subtask_on_low_level_stream():
    recipe = TrainingRecipe.from_dict(
        {
            "messages": [
                {
                    "role": "user",
                    "content": "${task}\nPlan: ${plan}\nMemory: ${memory}",
                    "stream": "high_level",
                },
                {"role": "assistant", "content": "${subtask}", "stream": "low_level", "target": True},
            ]
        }
    )
    out = render_sample(recipe=recipe, persistent=PERSISTENT, events=[], t=0.2, sample_idx=0, task="t")
    assert out["messages"][1] == {"role": "assistant", "content": "subtask 0"}
    assert out["message_streams"][1] == "low_level" and out["target_message_indices"] == [1]


def test_rows_must_be_dictionaries():
    recipe = _recipe({"role": "assistant", "content": "${subtask}", "stream": "high_level", "target": True})
    with pytest.raises(TypeError, match="Language rows must be dictionaries"):
        render_sample(recipe=recipe, persistent=["not a row"], events=[], t=0.0, sample_idx=0)


def test_unknown_placeholder_at_render_time_is_a_render_error():
    from spinal.language.render import _substitute

    with pytest.raises(RenderError, match="Unknown template binding"):
        _substitute("${missing}", {})

"""Recipe format: loading, validation rules, blends, per-camera expansion and the shipped recipes."""

from __future__ import annotations

import pytest
from spinal.language import MessageTurn, RecipeError, TrainingRecipe, load_recipe
from spinal.language.recipe import load_shipped_recipe, resolve_recipe, shipped_recipe_names

CAMS = ["observation.images.top", "observation.images.wrist"]

CANONICAL = """
blend:
  memory_update:
    weight: 0.10
    bindings:
      prior_memory: "nth_prev(style=memory, offset=1)"
      current_memory: "emitted_at(t, style=memory)"
      completed_subtask: "nth_prev(style=subtask, offset=1)"
    messages:
      - {role: user, content: "${task}", stream: high_level}
      - {role: assistant, content: "Previous memory: ${prior_memory}", stream: high_level, if_present: prior_memory}
      - {role: user, content: "Completed subtask: ${completed_subtask}", stream: high_level, if_present: completed_subtask}
      - {role: assistant, content: "${current_memory}", stream: high_level, target: true, if_present: current_memory}
  user_interjection_response:
    weight: 0.16
    bindings:
      prior_plan: "nth_prev(style=plan, offset=1)"
      current_plan: "emitted_at(t, style=plan)"
    messages:
      - {role: user, content: "${task}", stream: high_level}
      - {role: user, content: "${interjection}", stream: high_level, if_present: interjection}
      - {role: assistant, content: "${current_plan}", stream: high_level, target: true, if_present: current_plan,
         tool_calls_from: speech}
  high_level_subtask:
    weight: 0.15
    bindings:
      next_subtask: "nth_next(style=subtask, offset=1)"
    messages:
      - {role: user, content: "${task}\\nPlan: ${plan}\\nMemory: ${memory}", stream: high_level}
      - {role: assistant, content: "${next_subtask}", stream: high_level, target: true}
  low_level_execution:
    weight: 0.35
    messages:
      - {role: user, content: "${task}\\nPlan: ${plan}\\nMemory: ${memory}", stream: high_level}
      - {role: assistant, content: "${subtask}", stream: low_level, target: true}
  ask_vqa_top:
    weight: 0.10
    bindings:
      vqa_query: "emitted_at(t, style=vqa, role=user, camera=observation.images.top)"
      vqa: "emitted_at(t, style=vqa, role=assistant, camera=observation.images.top)"
    messages:
      - role: user
        stream: high_level
        if_present: vqa_query
        content: [{type: image, feature: observation.images.top}, {type: text, text: "${vqa_query}"}]
      - {role: assistant, content: "${vqa}", stream: high_level, target: true, if_present: vqa}
  ask_vqa_wrist:
    weight: 0.10
    bindings:
      vqa_query: "emitted_at(t, style=vqa, role=user, camera=observation.images.wrist)"
      vqa: "emitted_at(t, style=vqa, role=assistant, camera=observation.images.wrist)"
    messages:
      - role: user
        stream: high_level
        if_present: vqa_query
        content: [{type: image, feature: observation.images.wrist}, {type: text, text: "${vqa_query}"}]
      - {role: assistant, content: "${vqa}", stream: high_level, target: true, if_present: vqa}
"""


@pytest.fixture
def canonical_path(tmp_path):
    path = tmp_path / "canonical.yaml"
    path.write_text(CANONICAL)
    return path


def _msgs(*turns):
    return [MessageTurn(**t) for t in turns]


def test_canonical_yaml_loads_with_components_and_weights(canonical_path):
    recipe = load_recipe(canonical_path)
    assert list(recipe.blend) == [
        "memory_update",
        "user_interjection_response",
        "high_level_subtask",
        "low_level_execution",
        "ask_vqa_top",
        "ask_vqa_wrist",
    ]
    assert sum(c.weight for c in recipe.blend.values()) == pytest.approx(0.96)


def test_from_yaml_and_load_recipe_agree(canonical_path):
    assert TrainingRecipe.from_yaml(canonical_path) == load_recipe(canonical_path)


def test_unknown_binding_is_rejected():
    with pytest.raises(RecipeError, match=r"unknown binding\(s\): \['nope'\]"):
        TrainingRecipe(
            messages=_msgs({"role": "user", "content": "${nope}", "stream": "high_level", "target": True})
        )


def test_unknown_binding_in_a_block_or_if_present_is_rejected():
    block = [{"type": "text", "text": "${ghost}"}]
    with pytest.raises(RecipeError, match="ghost"):
        TrainingRecipe(
            messages=_msgs({"role": "user", "content": block, "stream": "high_level", "target": True})
        )
    with pytest.raises(RecipeError, match="phantom"):
        TrainingRecipe(
            messages=_msgs(
                {
                    "role": "user",
                    "content": "x",
                    "stream": "high_level",
                    "target": True,
                    "if_present": "phantom",
                }
            )
        )


def test_messages_and_blend_are_mutually_exclusive():
    turn = _msgs({"role": "assistant", "content": "${subtask}", "stream": "high_level", "target": True})
    component = TrainingRecipe(messages=turn, weight=1.0)
    with pytest.raises(RecipeError, match="exactly one"):
        TrainingRecipe(messages=turn, blend={"a": component})
    with pytest.raises(RecipeError, match="exactly one"):
        TrainingRecipe()


def test_a_target_turn_is_required():
    with pytest.raises(RecipeError, match="at least one target"):
        TrainingRecipe(messages=_msgs({"role": "user", "content": "${task}", "stream": "high_level"}))


def test_a_flow_only_low_level_turn_counts_as_supervision():
    recipe = TrainingRecipe(messages=_msgs({"role": "user", "content": "${subtask}", "stream": "low_level"}))
    assert recipe.messages[0].stream == "low_level"


def test_empty_blend_is_rejected():
    with pytest.raises(RecipeError, match="at least one component"):
        TrainingRecipe(blend={})


@pytest.mark.parametrize("weight", [None, 0, -0.5, "heavy"])
def test_component_weight_must_be_present_and_positive(weight):
    component = {
        "messages": [{"role": "assistant", "content": "${subtask}", "stream": "high_level", "target": True}]
    }
    if weight is not None:
        component["weight"] = weight
    with pytest.raises(RecipeError, match="weight"):
        TrainingRecipe.from_dict({"blend": {"a": component}})


def test_nested_blends_are_rejected():
    leaf = {
        "weight": 1.0,
        "messages": [{"role": "assistant", "content": "x", "stream": "high_level", "target": True}],
    }
    with pytest.raises(RecipeError, match="cannot itself define a blend"):
        TrainingRecipe.from_dict({"blend": {"outer": {"weight": 1.0, "blend": {"inner": leaf}}}})


def test_from_dict_builds_blend_components_with_turns():
    leaf = {
        "weight": 2.0,
        "messages": [{"role": "assistant", "content": "${plan}", "stream": "high_level", "target": True}],
    }
    recipe = TrainingRecipe.from_dict({"blend": {"a": leaf}})
    assert isinstance(recipe.blend["a"].messages[0], MessageTurn)
    assert recipe.blend["a"].weight == 2.0


def test_non_mapping_top_level_is_rejected(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(RecipeError, match="mapping at the top level"):
        load_recipe(path)


def test_turn_without_stream_fails_at_construction():
    with pytest.raises(RecipeError, match="stream"):
        MessageTurn(role="user", content="x", stream=None)


def test_turn_checks_role_content_and_blocks():
    with pytest.raises(RecipeError, match="role"):
        MessageTurn(role="robot", content="x", stream="high_level")
    with pytest.raises(RecipeError, match="tool_calls_from"):
        MessageTurn(role="assistant", content=None, stream="high_level")
    with pytest.raises(TypeError):
        MessageTurn(role="user", content=42, stream="high_level")  # type: ignore[arg-type]
    with pytest.raises(RecipeError, match="type"):
        MessageTurn(role="user", content=[{"text": "no type"}], stream="high_level")


def test_unknown_keys_and_bad_bindings_are_clear_errors():
    with pytest.raises(RecipeError, match="Unknown message turn key"):
        MessageTurn.from_dict({"role": "user", "content": "x", "stream": "high_level", "targt": True})
    with pytest.raises(RecipeError, match="Binding 'foo'.*Unknown keyword"):
        TrainingRecipe.from_dict(
            {
                "bindings": {"foo": "active_at(t, style=plan, colour=red)"},
                "messages": [
                    {"role": "assistant", "content": "${foo}", "stream": "high_level", "target": True}
                ],
            }
        )
    with pytest.raises(RecipeError, match="reserved"):
        TrainingRecipe.from_dict(
            {
                "bindings": {"task": "active_at(t, style=plan)"},
                "messages": [
                    {"role": "assistant", "content": "${task}", "stream": "high_level", "target": True}
                ],
            }
        )


def test_recipe_cameras_are_checked_against_the_dataset(canonical_path):
    recipe = load_recipe(canonical_path)
    assert recipe.referenced_cameras() == set(CAMS)
    recipe.check_cameras(CAMS)
    with pytest.raises(RecipeError, match="observation.images.wrist"):
        recipe.check_cameras(["observation.images.top", "observation.images.front"])


def test_per_camera_components_expand_once_per_camera_with_split_weight():
    recipe = load_shipped_recipe("subtasks_vqa")
    assert recipe.needs_cameras()
    expanded = recipe.for_cameras(CAMS)
    assert not expanded.needs_cameras()
    names = [n for n in expanded.blend if n.startswith("answer_question")]
    assert names == [f"answer_question[{c}]" for c in CAMS]
    assert expanded.blend[names[0]].weight == pytest.approx(recipe.blend["answer_question"].weight / 2)
    assert expanded.referenced_cameras() == set(CAMS)
    wrist = expanded.blend[names[1]]
    assert (
        wrist.bindings["vqa"] == "emitted_at(t, style=vqa, role=assistant, camera=observation.images.wrist)"
    )
    assert wrist.messages[0].content[0] == {"type": "image", "feature": "observation.images.wrist"}


def test_shipped_recipes_load_and_resolve_by_name():
    assert {"subtasks_vqa", "subtask_mem_vqa_speech"} <= set(shipped_recipe_names())
    full = resolve_recipe("subtask_mem_vqa_speech")
    assert {
        "current_subtask",
        "execute_subtask",
        "update_memory",
        "answer_interjection",
        "answer_question",
    } == set(full.blend)
    with pytest.raises(RecipeError, match="No shipped recipe"):
        resolve_recipe("no_such_recipe")

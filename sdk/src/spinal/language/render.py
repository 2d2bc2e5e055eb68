"""Rendering one frame's language rows into chat messages through a training recipe.

`render_sample` is what a training data loader (and `spinal render`) calls per sample.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from spinal.language.errors import RecipeError, RenderError
from spinal.language.recipe import DEFAULT_BINDINGS, PLACEHOLDER_RE, TASK_BINDING, MessageTurn, TrainingRecipe
from spinal.language.resolvers import resolve_spec
from spinal.language.rows import Row, normalize_rows

RenderedSample = dict[str, Any]


def _hash_int(key: str) -> int:
    """A 64-bit integer from a string, stable across processes (unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


def _unit_hash(key: str) -> float:
    """A number in [0, 1) from a string, stable across processes."""
    return _hash_int(key) / 2**64


def select_recipe(recipe: TrainingRecipe, sample_idx: int) -> tuple[str, TrainingRecipe]:
    """The blend component for `sample_idx` (name, recipe): a weighted, deterministic draw."""
    if recipe.needs_cameras():
        raise RecipeError(
            "This recipe has per-camera components; expand it with recipe.for_cameras(camera_keys)."
        )
    if recipe.blend is None:
        return "main", recipe
    total = sum(float(c.weight or 0.0) for c in recipe.blend.values())
    if total <= 0:
        raise RecipeError("Blend weights must add up to more than zero.")
    draw = _unit_hash(str(sample_idx)) * total
    running = 0.0
    name, component = next(iter(recipe.blend.items()))
    for name, component in recipe.blend.items():
        running += float(component.weight or 0.0)
        if running > draw:
            return name, component
    return name, component


def _task_from_ctx(dataset_ctx: Any) -> str | None:
    if dataset_ctx is None:
        return None
    if isinstance(dataset_ctx, Mapping):
        value = dataset_ctx.get("task")
    else:
        value = getattr(dataset_ctx, "task", None)
    return None if value is None else str(value)


def resolve_task(
    task: str | None,
    dataset_ctx: Any,
    *,
    persistent: Iterable[Row],
    sample_idx: int,
    prefer_task_aug: bool = False,
) -> str | None:
    """`${task}`: an explicit task, else a task_aug rephrasing rotated by sample, else the canonical task.

    With `prefer_task_aug`, rephrasings win even over an explicit task: a data loader that always fills `task`
    from tasks.parquet would otherwise never train on them.
    """
    if task is not None and not prefer_task_aug:
        return task
    aug = [
        r for r in persistent if r.get("style") == "task_aug" and r.get("role") == "user" and r.get("content")
    ]
    if aug:
        idx = _hash_int(f"task_aug:{sample_idx}") % len(aug)
        return str(aug[idx]["content"])
    if task is not None:
        return task
    return _task_from_ctx(dataset_ctx)


def _binding_text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        content = value.get("content")
        return "" if content is None else str(content)
    return str(value)


def _substitute(text: str, bindings: Mapping[str, Any]) -> str:
    def replace(match: Any) -> str:
        name = match.group(1)
        if name not in bindings:
            raise RenderError(f"Unknown template binding: ${{{name}}}.")
        return _binding_text(name, bindings[name])

    return PLACEHOLDER_RE.sub(replace, text)


def _referenced(turns: list[MessageTurn]) -> set[str]:
    return set().union(*(turn.referenced_bindings() for turn in turns))


def resolve_bindings(
    component: TrainingRecipe,
    *,
    persistent: list[Row],
    events: list[Row],
    t: float,
    sample_idx: int,
    task: str | None = None,
    dataset_ctx: Any = None,
    prefer_task_aug: bool = False,
) -> dict[str, Any]:
    """Resolve only the bindings `component` references: an unused default can never raise an ambiguity."""
    specs = {**DEFAULT_BINDINGS, **component.bindings}
    values: dict[str, Any] = {}
    for name in sorted(_referenced(component.messages or [])):
        if name == TASK_BINDING:
            values[name] = resolve_task(
                task,
                dataset_ctx,
                persistent=persistent,
                sample_idx=sample_idx,
                prefer_task_aug=prefer_task_aug,
            )
        elif name in specs:
            values[name] = resolve_spec(specs[name], persistent=persistent, events=events, t=t)
        else:
            raise RenderError(f"Unknown template binding: ${{{name}}}.")
    return values


def _render_turn(turn: MessageTurn, bindings: Mapping[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": turn.role}
    if isinstance(turn.content, str):
        message["content"] = _substitute(turn.content, bindings)
    elif isinstance(turn.content, list):
        blocks = copy.deepcopy(turn.content)
        for block in blocks:
            for key, value in block.items():
                if isinstance(value, str):
                    block[key] = _substitute(value, bindings)
        message["content"] = blocks
    if turn.tool_calls_from:
        row = bindings.get(turn.tool_calls_from)
        if isinstance(row, dict) and row.get("tool_calls"):
            message["tool_calls"] = copy.deepcopy(row["tool_calls"])
    return message


def render_sample(
    *,
    recipe: TrainingRecipe,
    persistent: Iterable[Any] | None,
    events: Iterable[Any] | None,
    t: float,
    sample_idx: int,
    task: str | None = None,
    dataset_ctx: Any = None,
    prefer_task_aug: bool = False,
) -> RenderedSample | None:
    """Render one frame: `{messages, message_streams, target_message_indices}`, or None when the chosen
    branch has nothing to supervise on this frame (its target is absent), so the loader can skip it."""
    persistent_rows = normalize_rows(persistent)
    event_rows = normalize_rows(events)
    _, component = select_recipe(recipe, sample_idx)
    bindings = resolve_bindings(
        component,
        persistent=persistent_rows,
        events=event_rows,
        t=t,
        sample_idx=sample_idx,
        task=task,
        dataset_ctx=dataset_ctx,
        prefer_task_aug=prefer_task_aug,
    )
    messages: list[dict[str, Any]] = []
    streams: list[str] = []
    targets: list[int] = []
    for turn in component.messages or []:
        if turn.if_present and bindings.get(turn.if_present) is None:
            continue
        messages.append(_render_turn(turn, bindings))
        streams.append(str(turn.stream))
        if turn.target:
            targets.append(len(messages) - 1)
    if not targets and "low_level" not in streams:
        return None
    _validate_rendered(messages, streams, targets)
    return {"messages": messages, "message_streams": streams, "target_message_indices": targets}


def _validate_rendered(messages: list[dict[str, Any]], streams: list[str], targets: list[int]) -> None:
    if len(streams) != len(messages):
        raise RenderError("Rendered streams do not align with rendered messages.")
    if any(not 0 <= i < len(messages) for i in targets):
        raise RenderError(f"Rendered target indices {targets} fall outside {len(messages)} messages.")

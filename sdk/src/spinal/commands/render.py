"""`spinal render DATASET --recipe FILE`: preview the chat samples a training recipe renders from an
annotated dataset, with how often each branch renders, before spending GPU hours on it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from spinal.language.columns import has_language_columns, iter_frame_language
from spinal.language.errors import LanguageError
from spinal.language.recipe import resolve_recipe
from spinal.language.render import render_sample, select_recipe
from spinal.language.v3_dataset import V3Dataset


def _show(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        parts = []
        for block in content:
            if block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            else:
                parts.append(f"<{block.get('type')} {block.get('feature', '')}>".replace(" >", ">"))
        text = " ".join(parts)
    else:
        text = "" if content is None else str(content)
    calls = message.get("tool_calls")
    if calls:
        text += " " + json.dumps(calls)
    return text


def render(
    dataset: Annotated[Path, typer.Argument(help="Annotated LeRobotDataset v3 folder.")],
    recipe: Annotated[
        str, typer.Option(help="Recipe YAML file, or a shipped recipe name (subtasks_vqa, ...).")
    ],
    episode: Annotated[int | None, typer.Option(help="Episode to preview (default: the first).")] = None,
    samples: Annotated[int, typer.Option(help="How many rendered samples to print.")] = 5,
    prefer_task_aug: Annotated[
        bool, typer.Option(help="Rotate task_aug rephrasings even over the task.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print samples as JSON lines.")] = False,
) -> None:
    """Render DATASET's frames through RECIPE and print samples and per-branch counts."""
    try:
        data = V3Dataset(dataset)
        if not has_language_columns(dataset):
            typer.echo(
                f"error: {dataset} has no language columns; run `spinal annotate {dataset}` first.", err=True
            )
            raise typer.Exit(1)
        loaded = resolve_recipe(recipe).for_cameras(data.camera_keys)
        loaded.check_cameras(data.camera_keys)
        chosen = episode if episode is not None else data.episode_indices[0]
        if chosen not in data.episode_indices:
            typer.echo(f"error: episode {chosen} is not in {dataset}.", err=True)
            raise typer.Exit(1)
        task = data.episode(chosen).task
        drawn: Counter[str] = Counter()
        rendered: Counter[str] = Counter()
        shown = 0
        total = 0
        for frame in iter_frame_language(dataset, episodes={chosen}):
            total += 1
            branch, _ = select_recipe(loaded, frame.index)
            drawn[branch] += 1
            sample = render_sample(
                recipe=loaded,
                persistent=frame.persistent,
                events=frame.events,
                t=frame.timestamp,
                sample_idx=frame.index,
                task=task,
                prefer_task_aug=prefer_task_aug,
            )
            if sample is None:
                continue
            rendered[branch] += 1
            if shown < samples:
                shown += 1
                if as_json:
                    typer.echo(
                        json.dumps({"index": frame.index, "t": frame.timestamp, "branch": branch, **sample})
                    )
                else:
                    typer.echo(f"--- frame {frame.index} (t={frame.timestamp:.3f}s) · {branch} ---")
                    for i, (message, stream) in enumerate(
                        zip(sample["messages"], sample["message_streams"], strict=True)
                    ):
                        mark = "*" if i in sample["target_message_indices"] else " "
                        typer.echo(f"{mark} {message['role']:<9} {stream:<10} {_show(message)}")
    except LanguageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if not as_json:
        typer.echo(f"episode {chosen}: {sum(rendered.values())} of {total} frames render (* marks targets).")
        for branch in drawn:
            typer.echo(f"  {branch}: drawn {drawn[branch]}, rendered {rendered[branch]}")


def register(app: typer.Typer) -> None:
    app.command("render")(render)

"""`spinal annotate DATASET`: write language annotations into a LeRobotDataset v3 with a VLM, human labels or
the stub; `--dry-run` prints the prompts instead, `--shard i/n` and `--merge DIR` split big datasets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from spinal.annotate.backends.base import LabelRequest
from spinal.annotate.errors import AnnotateError
from spinal.annotate.pipeline import AnnotationPipeline, RunSummary, parse_shard
from spinal.annotate.settings import AnnotateSettings
from spinal.annotate.staging import Staging
from spinal.language.errors import LanguageError


def _parse_episodes(text: str | None) -> list[int] | None:
    if not text:
        return None
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        elif part:
            out.append(int(part))
    return out


def _settings(config: Path | None, overrides: dict[str, Any]) -> AnnotateSettings:
    base: dict[str, Any] = {}
    if config is not None:
        try:
            loaded = yaml.safe_load(config.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise typer.BadParameter(f"cannot read settings file {config}: {exc}") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter(f"settings file {config} must hold a mapping")
        base = loaded
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = base
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    from pydantic import ValidationError

    try:
        return AnnotateSettings.model_validate(base)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise typer.BadParameter(f"setting {where}: {first['msg']}") from None


def _describe_request(request: LabelRequest) -> str:
    lines = [f"--- episode {request.episode} · {request.kind} ---"]
    for message in request.messages:
        content = message["content"]
        if isinstance(content, str):
            lines.append(f"[{message['role']}] {content}")
            continue
        for block in content:
            if block.get("type") == "text":
                lines.append(f"[{message['role']}] {block['text']}")
            else:
                url = block.get("image_url", {}).get("url", "")
                lines.append(f"[{message['role']}] <image: {len(url) * 3 // 4:,} bytes of JPEG>")
    return "\n".join(lines)


def _print_summary(summary: RunSummary, as_json: bool) -> None:
    payload = {
        "episodes": len(summary.episodes),
        "annotated": summary.annotated,
        "skipped_already_staged": summary.skipped,
        "failed": {str(k): v for k, v in summary.failed.items()},
        "modules_run": dict(summary.modules_run),
        "backend": summary.backend_stats,
        "warnings": summary.warnings,
        "validation_errors": summary.validation.errors if summary.validation else [],
        "written": bool(summary.write),
        "frames_written": summary.write.frames if summary.write else 0,
        "elapsed_s": round(summary.elapsed_s, 3),
    }
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(
        f"{len(summary.annotated)} episode(s) annotated, {len(summary.skipped)} already staged, "
        f"{len(summary.failed)} failed in {summary.elapsed_s:.1f}s; backend {summary.backend_stats}."
    )
    for ep, reason in sorted(summary.failed.items()):
        typer.echo(f"  episode {ep} failed: {reason}", err=True)
    for warning in summary.warnings[:20]:
        typer.echo(f"  warning: {warning}", err=True)
    if summary.write:
        w = summary.write
        typer.echo(
            f"wrote {w.persistent_rows} persistent and {w.event_rows} event rows over {w.frames} frames "
            f"({len(w.files_rewritten)} file(s) rewritten, {len(w.files_unchanged)} unchanged)."
        )


def annotate(
    dataset: Annotated[Path, typer.Argument(help="LeRobotDataset v3 folder (with meta/info.json).")],
    backend: Annotated[
        str | None, typer.Option(help="openai (any OpenAI-compatible server), manual or stub.")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name the endpoint serves.")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="Environment variable holding the API key.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Requests in flight at once.")] = None,
    max_retries: Annotated[
        int | None, typer.Option(help="Retries per request on 5xx and connection errors.")
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds per request before it is retried.")] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    labels: Annotated[
        Path | None, typer.Option(help="Human labels (YAML or CSV) for --backend manual.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of settings; flags override it.")] = None,
    camera: Annotated[
        str | None, typer.Option(help="Camera shown for subtasks/interjections (default: first).")
    ] = None,
    episodes: Annotated[str | None, typer.Option(help="Only these episodes, e.g. 0,3,5-9.")] = None,
    shard: Annotated[
        str | None, typer.Option(help="Annotate shard i of n (i/n) into staging only; merge later.")
    ] = None,
    merge: Annotated[
        list[Path] | None, typer.Option(help="Merge a shard's staging folder, then validate and write.")
    ] = None,
    staging_dir: Annotated[
        Path | None, typer.Option(help="Staging folder (default DATASET/.annotate_staging).")
    ] = None,
    task_aug: Annotated[bool, typer.Option("--task-aug/--no-task-aug")] = True,
    subtasks: Annotated[bool, typer.Option("--subtasks/--no-subtasks")] = True,
    memory: Annotated[bool, typer.Option("--memory/--no-memory")] = True,
    interjections: Annotated[bool, typer.Option("--interjections/--no-interjections")] = True,
    vqa: Annotated[bool, typer.Option("--vqa/--no-vqa")] = True,
    rephrasings: Annotated[int | None, typer.Option(help="task_aug rephrasings per episode.")] = None,
    vqa_hz: Annotated[float | None, typer.Option(help="VQA questions per second per camera.")] = None,
    max_interjections: Annotated[int | None, typer.Option(help="Interjections per episode at most.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the prompts for one episode; send nothing.")
    ] = False,
    skip_validation: Annotated[
        bool, typer.Option("--skip-validation", help="Write even if validation fails.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run summary as JSON.")] = False,
) -> None:
    """Annotate DATASET with task rephrasings, subtasks, plans, memories, interjections, speech and VQA."""
    settings = _settings(
        config,
        {
            "vlm.backend": backend,
            "vlm.base_url": base_url,
            "vlm.model": model,
            "vlm.api_key_env": api_key_env,
            "vlm.concurrency": concurrency,
            "vlm.max_retries": max_retries,
            "vlm.timeout_s": timeout,
            "vlm.temperature": temperature,
            "vlm.labels": str(labels) if labels else None,
            "camera": camera,
            "seed": seed,
            "task_aug.enabled": None if task_aug else False,
            "task_aug.n_rephrasings": rephrasings,
            "subtasks.enabled": None if subtasks else False,
            "subtasks.emit_memory": None if memory else False,
            "interjections.enabled": None if interjections else False,
            "interjections.max_per_episode": max_interjections,
            "vqa.enabled": None if vqa else False,
            "vqa.emission_hz": vqa_hz,
        },
    )
    try:
        only = _parse_episodes(episodes)
    except ValueError:
        raise typer.BadParameter(f"--episodes must be indices like 0,3,5-9; got {episodes!r}") from None
    try:
        pipeline = AnnotationPipeline(dataset, settings, staging_dir=staging_dir)
        try:
            _run(pipeline, only, shard, merge, dry_run, skip_validation, as_json)
        finally:
            pipeline.close()
    except (AnnotateError, LanguageError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _run(
    pipeline: AnnotationPipeline,
    only: list[int] | None,
    shard: str | None,
    merge: list[Path] | None,
    dry_run: bool,
    skip_validation: bool,
    as_json: bool,
) -> None:
    if dry_run:
        chosen = pipeline.select_episodes(only)[:1] if not only else pipeline.select_episodes(only)
        requests = pipeline.dry_run(chosen)
        for request in requests:
            typer.echo(_describe_request(request))
        typer.echo(
            f"{len(requests)} request(s) would be sent for episode(s) {chosen}; nothing was sent or written."
        )
        return
    if merge:
        for folder in merge:
            report = pipeline.staging.merge_from(Staging(folder))
            typer.echo(
                f"merged {folder}: {len(report.copied)} file(s) copied, {len(report.identical)} already there."
            )
        report, written = pipeline.write(skip_validation=skip_validation)
        summary = RunSummary(validation=report, write=written)
        summary.warnings = report.warnings
        _print_summary(summary, as_json)
        return
    shard_spec = parse_shard(shard) if shard else None
    total = len(pipeline.select_episodes(only, shard_spec))
    with Progress(
        TextColumn("annotating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=as_json,
    ) as progress:
        bar = progress.add_task("episodes", total=total)
        pipeline.progress = lambda episode, status: progress.advance(bar)
        summary = pipeline.run(only=only, shard=shard_spec, skip_validation=skip_validation)
    _print_summary(summary, as_json)
    if shard and not summary.failed:
        typer.echo(f"shard {shard} staged in {pipeline.staging.root}; merge all shards with --merge DIR.")
    if not summary.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("annotate")(annotate)

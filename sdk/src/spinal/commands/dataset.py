"""`spinal dataset ...`: convert recordings to LeRobotDataset v3.0, inspect, validate, merge, restat, plot, push.

Registered into the `spinal` CLI by discovery; each command maps library errors to `ExitCode`s.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from spinal.commands._cli import ExitCode, emit_json, err, fail, human_bytes, out

app = typer.Typer(
    name="dataset",
    help="LeRobotDataset v3.0: convert device recordings, inspect, validate, merge, statistics, plots, push.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of text.")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="dataset")


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not enabled,
        transient=True,
    )


@app.command()
def convert(
    raw_dir: Annotated[
        Path, typer.Argument(help="Folder holding episode folders (from `spinal device pull`).")
    ],
    out_dir: Annotated[Path, typer.Argument(help="New dataset folder to write.")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Dataset name, e.g. user/so101_pick.")],
    codec: Annotated[str, typer.Option(help="Video codec: auto (H.264 if available), h264 or av1.")] = "auto",
    crf: Annotated[int, typer.Option(min=0, max=63, help="Video quality (lower is better and bigger).")] = 23,
    gop: Annotated[int, typer.Option(min=1, max=300, help="Keyframe every N frames (LeRobot uses 2).")] = 2,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Episodes converted in parallel.")] = max(
        1, min(4, os.cpu_count() or 1)
    ),
    video_file_size_mb: Annotated[int, typer.Option(min=1, help="Start a new mp4 past this size.")] = 200,
    data_file_size_mb: Annotated[
        int, typer.Option(min=1, help="Start a new parquet file past this size.")
    ] = 100,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset in OUT_DIR.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Convert recorded episodes into a LeRobotDataset v3.0 (exit 3 when some episodes were skipped)."""
    from spinal.dataset import ConversionError, ConvertOptions, VideoSettings, convert_recordings
    from spinal.dataset.video import VideoError

    options = ConvertOptions(
        repo_id=repo_id,
        video=VideoSettings(codec=codec, crf=crf, gop=gop),
        workers=workers,
        data_files_size_in_mb=data_file_size_mb,
        video_files_size_in_mb=video_file_size_mb,
        overwrite=overwrite,
    )
    with _progress(not json_output) as progress:
        task = progress.add_task("converting", total=None)

        def on_progress(kind: str, amount: float) -> None:
            if kind == "total":
                progress.update(task, total=amount)
            else:
                progress.advance(task, amount)

        try:
            report = convert_recordings(raw_dir, out_dir, options, on_progress)
        except (ConversionError, VideoError) as exc:
            fail(str(exc))
    if json_output:
        emit_json(report.to_dict())
    else:
        for outcome in report.episodes:
            if outcome.converted:
                out.print(
                    f"[green]✓[/] {outcome.episode_id} → episode {outcome.episode_index} ({outcome.frames} frames)"
                )
            else:
                err.print(f"[yellow]skipped[/] {outcome.episode_id}: {outcome.reason}")
        out.print(
            f"{len(report.converted)} of {len(report.episodes)} episodes, {report.total_frames} frames, "
            f"{report.codec} video → {report.output} in {report.seconds:.1f} s"
        )
    raise typer.Exit(int(ExitCode.PARTIAL if report.failed else ExitCode.OK))


@app.command()
def info(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder.")],
    json_output: JsonOption = False,
) -> None:
    """Describe a dataset: episodes, frames, tasks, features, videos, size."""
    from spinal.dataset import DatasetError, dataset_info

    try:
        summary = dataset_info(dataset)
    except DatasetError as exc:
        fail(str(exc))
    if json_output:
        emit_json(summary)
        return
    out.print(
        f"[bold]{summary['root']}[/]  {summary['codebase_version']}  robot {summary['robot_type']}  "
        f"{summary['fps']} fps"
    )
    out.print(
        f"{summary['episodes']} episodes, {summary['frames']} frames ({summary['duration_s']:.1f} s), "
        f"{summary['data_files']} data file(s), {human_bytes(summary['size_bytes'])}"
    )
    table = Table("feature", "dtype", "shape", "names / video")
    for key, ft in summary["features"].items():
        extra = summary["videos"].get(key)
        detail = (
            f"{extra['codec']} {extra['size']} {extra['pix_fmt']}, {extra['files']} file(s)"
            if extra
            else ", ".join(map(str, ft["names"] or []))
        )
        table.add_row(key, str(ft["dtype"]), str(ft["shape"]), detail)
    out.print(table)
    out.print("tasks: " + "; ".join(f"[{i}] {t}" for i, t in enumerate(summary["tasks"])))


@app.command()
def validate(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder.")],
    decode: Annotated[bool, typer.Option(help="Decode every video frame too (slow, thorough).")] = False,
    tolerance_s: Annotated[
        float, typer.Option(help="Timestamp tolerance in seconds (LeRobot's default).")
    ] = 1e-4,
    json_output: JsonOption = False,
) -> None:
    """Check everything LeRobot's loader relies on; exit 4 and one line per violation when something is off."""
    from spinal.dataset import validate_dataset

    with _progress(not json_output) as progress:
        task = progress.add_task("validating", total=None)
        report = validate_dataset(
            dataset,
            decode=decode,
            tolerance_s=tolerance_s,
            progress=lambda step: progress.update(task, description=step),
        )
    if json_output:
        emit_json(report.to_dict())
    elif report.ok:
        out.print(
            f"[green]valid[/]: {report.checked.get('episodes', 0)} episodes, {report.checked.get('frames', 0)} frames, "
            f"{report.checked.get('video_files', 0)} video file(s)"
        )
    else:
        for violation in report.violations:
            out.print(f"[red]✗[/] {violation}")
        out.print(f"{len(report.violations)} violation(s)")
    raise typer.Exit(int(ExitCode.OK if report.ok else ExitCode.INVALID))


@app.command()
def merge(
    paths: Annotated[list[Path], typer.Argument(help="Datasets to merge, then the new output folder last.")],
    repo_id: Annotated[
        str | None, typer.Option("--repo-id", help="Name for the merged dataset's card.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset at the output.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Merge datasets A B ... into OUT (episodes concatenated, tasks unified, videos copied without re-encoding)."""
    from spinal.dataset import DatasetError, merge_datasets

    if len(paths) < 3:
        fail("give at least two datasets and an output folder: spinal dataset merge A B OUT", ExitCode.USAGE)
    *sources, output = paths
    with _progress(not json_output) as progress:
        task = progress.add_task("merging", total=None)
        try:
            report = merge_datasets(
                sources,
                output,
                repo_id=repo_id,
                overwrite=overwrite,
                progress=lambda n: progress.advance(task, n),
            )
        except DatasetError as exc:
            fail(str(exc))
    if json_output:
        emit_json(report.to_dict())
    else:
        out.print(
            f"merged {len(sources)} datasets → {report.output}: {report.episodes} episodes, {report.frames} frames, {report.tasks} task(s)"
        )


@app.command()
def stats(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder.")],
    json_output: JsonOption = False,
) -> None:
    """Recompute per-episode and dataset statistics (meta/episodes stats columns and meta/stats.json)."""
    from spinal.dataset import DatasetError, recompute_stats
    from spinal.dataset.stats import to_jsonable

    with _progress(not json_output) as progress:
        task = progress.add_task("statistics", total=None)
        try:
            result = recompute_stats(dataset, progress=lambda n: progress.advance(task, n))
        except DatasetError as exc:
            fail(str(exc))
    payload = to_jsonable(result)
    if json_output:
        emit_json(payload)
        return
    table = Table("feature", "min", "max", "mean", "std", "count")
    for key, values in payload.items():
        table.add_row(key, *(_short(values[s]) for s in ("min", "max", "mean", "std", "count")))
    out.print(table)


def _short(value: object) -> str:
    import numpy as np

    array = np.asarray(value, dtype=np.float64).reshape(-1)
    text = ", ".join(f"{v:.3g}" for v in array[:6])
    return text + (" …" if array.size > 6 else "")


@app.command()
def plot(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder.")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the PNG files.")],
    episode: Annotated[
        list[int] | None, typer.Option("--episode", "-e", help="Episode index (repeatable).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Write one PNG per episode with every joint's state and action over time."""
    from spinal.dataset import DatasetError
    from spinal.dataset.plot import plot_episodes

    try:
        written = plot_episodes(dataset, out_dir, episode)
    except DatasetError as exc:
        fail(str(exc))
    if json_output:
        emit_json({"written": [str(p) for p in written]})
    else:
        out.print(f"wrote {len(written)} plot(s) to {out_dir}")


@app.command()
def push(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder.")],
    repo_id: Annotated[str, typer.Option("--repo-id", help="Hub dataset repo, e.g. user/so101_pick.")],
    private: Annotated[bool, typer.Option(help="Create the repo as private.")] = False,
    branch: Annotated[str | None, typer.Option(help="Push to this branch instead of main.")] = None,
    token: Annotated[
        str | None, typer.Option(envvar="HF_TOKEN", help="Hub token (default: HF_TOKEN or your hf login).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--validate/--no-validate", help="Validate before uploading.")
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Upload the dataset to the Hugging Face Hub (needs the optional huggingface_hub package) and tag it v3.0 for LeRobot."""
    from spinal.dataset import PushError
    from spinal.dataset.push import push_dataset

    try:
        url = push_dataset(dataset, repo_id, token=token, private=private, branch=branch, check=check)
    except PushError as exc:
        fail(str(exc))
    if json_output:
        emit_json({"url": url, "repo_id": repo_id})
    else:
        out.print(f"pushed {dataset} → {url} (tag v3.0)")

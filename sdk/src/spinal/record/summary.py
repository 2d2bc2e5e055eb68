"""The end-of-session summary: one row per dataset episode, totals (episodes, frames, duration, size), the path.

Printed by `spinal record` after the dataset is built; also turned into JSON for `--json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from spinal.dataset import DatasetError, dataset_info
from spinal.record.session import SessionResult


def dataset_totals(out_dir: Path) -> dict[str, Any] | None:
    """Episodes, frames, duration and size of the dataset at `out_dir`, or None when there is none."""
    if not (out_dir / "meta" / "info.json").is_file():
        return None
    try:
        info = dataset_info(out_dir)
    except DatasetError:
        return None
    return {
        "path": str(out_dir),
        "episodes": info["episodes"],
        "frames": info["frames"],
        "duration_s": info["duration_s"],
        "size_bytes": info["size_bytes"],
        "fps": info["fps"],
    }


def summary_rows(result: SessionResult) -> list[dict[str, Any]]:
    """One row per kept episode in dataset order (the conversion's episode index where it has one)."""
    tasks = {e.episode_id: e.task for e in result.kept}
    numbers = {e.episode_id: e.number for e in result.kept}
    report = result.sync.convert if result.sync is not None else None
    rows = []
    if report is not None:
        for outcome in report.episodes:
            rows.append(
                {
                    "episode_index": outcome.episode_index,
                    "episode_id": outcome.episode_id,
                    "session_number": numbers.get(outcome.episode_id),
                    "frames": outcome.frames,
                    "task": tasks.get(outcome.episode_id, ""),
                    "converted": outcome.converted,
                    "reason": outcome.reason or "",
                }
            )
    else:
        for entry in result.kept:
            rows.append(
                {
                    "episode_index": None,
                    "episode_id": entry.episode_id,
                    "session_number": entry.number,
                    "frames": entry.frames,
                    "task": entry.task,
                    "converted": False,
                    "reason": "not converted",
                }
            )
    return rows


def render_summary(result: SessionResult, out_dir: Path, totals: dict[str, Any] | None) -> RenderableType:
    fps = (totals or {}).get("fps") or 0
    table = Table(title="recorded episodes", title_justify="left")
    for column in ("episode", "device episode id", "frames", "duration", "task"):
        table.add_column(column, justify="right" if column in ("episode", "frames", "duration") else "left")
    for row in summary_rows(result):
        duration = f"{row['frames'] / fps:.1f} s" if fps and row["converted"] else "-"
        index = "-" if row["episode_index"] is None else str(row["episode_index"])
        task = escape(row["task"]) if row["converted"] else f"[yellow]{escape(row['reason'])}[/]"
        table.add_row(index, row["episode_id"], str(row["frames"]), duration, task)
    parts: list[RenderableType] = [table]
    if totals is not None:
        table.add_section()
        table.add_row(
            "",
            f"{totals['episodes']} episode(s)",
            str(totals["frames"]),
            f"{totals['duration_s']:.1f} s",
            f"dataset {_size(totals['size_bytes'])}",
        )
        parts.append(Text.assemble(("dataset: ", "bold"), (str(out_dir), "bold green")))
    for entry in result.interrupted:
        parts.append(
            Text(
                f"left out: {entry.episode_id} (episode {entry.number}, {entry.note or 'interrupted'}; "
                "still on the device)",
                style="yellow",
            )
        )
    return Group(*parts)


def summary_json(result: SessionResult, totals: dict[str, Any] | None) -> dict[str, Any]:
    sync = result.sync
    return {
        "ended_by": result.ended_by.value,
        "problem": result.problem,
        "held": result.held,
        "journal": result.journal_path,
        "episodes": summary_rows(result),
        "left_out": [e.model_dump(mode="json") for e in result.interrupted],
        "missing": dict(sync.missing) if sync else {},
        "convert_error": sync.convert_error if sync else "",
        "dataset": totals,
    }


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"

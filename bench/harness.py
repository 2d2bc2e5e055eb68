"""The benchmark harness: tables, percentiles and the writer of bench/results/*.md and *.json.

Every benchmark module exposes `run(quick: bool) -> list[Table]`; `bench.run` discovers and writes them.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Table:
    """One result table: a title, column names, rows of cells, and notes printed under it."""

    title: str
    columns: list[str]
    rows: list[list[object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.title!r} has {len(self.columns)} columns, row has {len(cells)}")
        self.rows.append(list(cells))

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        for row in self.rows:
            lines.append("| " + " | ".join(_fmt(c) for c in row) + " |")
        if self.notes:
            lines.append("")
            lines.extend(f"- {n}" for n in self.notes)
        return "\n".join(lines) + "\n"


def _fmt(cell: object) -> str:
    if isinstance(cell, float):
        if cell == 0:
            return "0"
        if abs(cell) >= 100:
            return f"{cell:,.0f}"
        if abs(cell) >= 1:
            return f"{cell:.2f}"
        return f"{cell:.3f}"
    return str(cell)


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation; NaN for no samples."""
    if not samples:
        return float("nan")
    data = sorted(samples)
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def summarize_us(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50 / p99 / mean / max of nanosecond samples, in microseconds."""
    us = [s / 1000.0 for s in samples_ns]
    return {
        "p50_us": percentile(us, 50),
        "p99_us": percentile(us, 99),
        "mean_us": statistics.fmean(us) if us else float("nan"),
        "max_us": max(us) if us else float("nan"),
    }


def time_calls(fn: Callable[[], object], *, iterations: int, warmup: int = 10) -> list[int]:
    """Call `fn` `warmup` times, then `iterations` times, returning each call's duration in ns."""
    for _ in range(warmup):
        fn()
    out: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return out


def machine_description() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
    }


def write_results(name: str, tables: list[Table], *, results_dir: Path = RESULTS_DIR) -> Path:
    """Write `<name>.md` and `<name>.json` and refresh `latest.md` (all tables, newest runs)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    machine = machine_description()
    md = [
        f"## {name}",
        "",
        f"Run {stamp} on {machine['cpus']} CPUs, {machine['machine']}, Python {machine['python']}.",
        "",
    ]
    md.extend(t.to_markdown() for t in tables)
    md_path = results_dir / f"{name}.md"
    md_path.write_text("\n".join(md))
    payload = {"name": name, "run_at": stamp, "machine": machine, "tables": [asdict(t) for t in tables]}
    (results_dir / f"{name}.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    _write_index(results_dir)
    return md_path


def _write_index(results_dir: Path) -> None:
    parts = ["# spinal benchmark results", "", "Written by `make bench`; one section per benchmark.", ""]
    for md in sorted(results_dir.glob("*.md")):
        if md.name in {"latest.md", "README.md"}:
            continue
        parts.append(md.read_text())
    (results_dir / "latest.md").write_text("\n".join(parts))

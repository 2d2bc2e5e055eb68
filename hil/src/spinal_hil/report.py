"""Run reports of the HIL rig: commanded vs actual joint trajectories as PNG plots, metrics, and an index.

Used by the HIL scenarios (hil/tests) and anyone driving a rig; artifacts land in test-artifacts/hil/ unless
$SPINAL_TEST_ARTIFACTS says otherwise.
"""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Positions = Sequence[float] | None


def artifacts_dir() -> Path:
    env = os.environ.get("SPINAL_TEST_ARTIFACTS")
    if env:
        return Path(env) / "hil"
    for parent in Path(__file__).resolve().parents:
        if (parent / "Makefile").is_file() and (parent / "hil").is_dir():
            return parent / "test-artifacts" / "hil"
    return Path.cwd() / "test-artifacts" / "hil"


@dataclass
class Sample:
    t: float
    commanded: Positions
    reported: Positions
    true: Positions
    leader: Positions = None


@dataclass
class TrajectoryRecorder:
    """Samples of one run; `write()` draws one subplot per joint (commanded, MCU-reported, true shaft, leader)."""

    title: str
    joints: Sequence[str]
    samples: list[Sample] = field(default_factory=list)
    metrics: dict[str, float | int | str] = field(default_factory=dict)

    def record(
        self, t: float, commanded: Positions, reported: Positions, true: Positions, leader: Positions = None
    ):
        self.samples.append(Sample(t, commanded, reported, true, leader))

    def errors(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """Per sample, the largest |true - commanded| over the joints (reported where no true position)."""
        out = []
        for s in self.samples:
            actual = s.true if s.true is not None else s.reported
            if since <= s.t <= until and s.commanded is not None and actual:
                out.append(max(abs(a - c) for a, c in zip(actual, s.commanded, strict=False)))
        return out

    def max_error(self, since: float = 0.0, until: float = float("inf")) -> float:
        return max(self.errors(since, until), default=0.0)

    def error_percentile(self, q: float, since: float = 0.0, until: float = float("inf")) -> float:
        """The q-th percentile (0..100) of the per-sample errors, in ticks."""
        errors = sorted(self.errors(since, until))
        if not errors:
            return 0.0
        return errors[min(len(errors) - 1, int(len(errors) * q / 100))]

    def write(self, out_dir: Path) -> Path:
        """Write <slug>.png, <slug>.csv and <slug>.json into out_dir; returns the PNG path."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out_dir.mkdir(parents=True, exist_ok=True)
        slug = "".join(c if c.isalnum() else "_" for c in self.title.lower()).strip("_")
        n = len(self.joints)
        fig, axes = plt.subplots(n, 1, figsize=(9, 1.7 * n + 0.8), sharex=True, squeeze=False)
        series = (
            ("commanded", "target (host)", {"color": "black", "linestyle": "--", "linewidth": 1.0}),
            ("reported", "reported (MCU)", {"color": "tab:blue", "linewidth": 1.0, "alpha": 0.8}),
            ("true", "true shaft (sim)", {"color": "tab:orange", "linewidth": 1.4}),
            ("leader", "leader arm", {"color": "tab:green", "linewidth": 1.0, "alpha": 0.7}),
        )
        for j, name in enumerate(self.joints):
            ax = axes[j][0]
            for attr, label, style in series:
                # A rebooting MCU reports no joints for a moment: those samples have nothing to plot.
                pts = [(s.t, getattr(s, attr)[j]) for s in self.samples if len(getattr(s, attr) or ()) > j]
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
            ax.set_ylabel(f"{name}\nticks", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7, loc="upper right", ncol=4)
        axes[-1][0].set_xlabel("time (s)")
        fig.suptitle(self.title, fontsize=10)
        fig.tight_layout()
        png = out_dir / f"{slug}.png"
        fig.savefig(png, dpi=90)
        plt.close(fig)
        with open(out_dir / f"{slug}.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(
                ["t"]
                + [f"{kind}_{j}" for kind in ("commanded", "reported", "true", "leader") for j in self.joints]
            )
            for s in self.samples:
                row: list[object] = [f"{s.t:.4f}"]
                for values in (s.commanded, s.reported, s.true, s.leader):
                    row += list(values) if values is not None and len(values) == n else [""] * n
                writer.writerow(row)
        (out_dir / f"{slug}.json").write_text(
            json.dumps({"title": self.title, **self.metrics}, indent=2) + "\n"
        )
        return png


class TrajectorySampler:
    """Calls the given probes at a fixed rate on a thread and records them; use as a context manager."""

    def __init__(
        self,
        recorder: TrajectoryRecorder,
        *,
        commanded: Callable[[], Positions],
        reported: Callable[[], Positions],
        true: Callable[[], Positions] = lambda: None,
        leader: Callable[[], Positions] = lambda: None,
        rate_hz: float = 50.0,
    ) -> None:
        self.recorder = recorder
        self._probes = (commanded, reported, true, leader)
        self._period = 1.0 / rate_hz
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hil-sampler", daemon=True)
        self.t0 = time.monotonic()

    def __enter__(self) -> TrajectorySampler:
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            commanded, reported, true, leader = (probe() for probe in self._probes)
            self.recorder.record(self.now(), commanded, reported, true, leader)


@dataclass
class HilReport:
    """The index of a test run: one section per scenario with its plot and metrics, written as report.md."""

    out_dir: Path
    sections: list[tuple[str, str, dict[str, object], Path | None]] = field(default_factory=list)

    def add(self, name: str, outcome: str, metrics: dict[str, object], plot: Path | None = None) -> None:
        self.sections.append((name, outcome, metrics, plot))

    def write(self) -> Path:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lines = ["# spinal HIL run", "", f"Run {time.strftime('%Y-%m-%d %H:%M:%S')}.", ""]
        for name, outcome, metrics, plot in self.sections:
            lines += [f"## {name} — {outcome}", ""]
            lines += [f"- {k}: {v}" for k, v in metrics.items()]
            if plot is not None:
                lines += ["", f"![{name}]({plot.relative_to(self.out_dir)})"]
            lines.append("")
        path = self.out_dir / "report.md"
        path.write_text("\n".join(lines))
        return path

"""`spinal dataset plot`: one PNG per episode with each joint's state and action over time.

Uses matplotlib (the `spinal[plot]` extra) without a display; called by the CLI.
"""

from __future__ import annotations

from pathlib import Path

from spinal.dataset import layout
from spinal.dataset.errors import DatasetError
from spinal.dataset.reader import DatasetReader


def plot_episodes(root: Path, out_dir: Path, episodes: list[int] | None = None) -> list[Path]:
    """Write `episode_000000.png` ... for the chosen episodes (all by default); returns the paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise DatasetError("plotting needs matplotlib: pip install 'spinal[plot]'") from exc
    reader = DatasetReader(root)
    features = reader.features
    keys = [k for k in (layout.STATE_KEY, layout.ACTION_KEY) if k in features]
    if not keys:
        raise DatasetError(f"{root} has neither {layout.STATE_KEY} nor {layout.ACTION_KEY} to plot")
    chosen = (
        reader.episodes
        if episodes is None
        else [reader.episodes[i] for i in episodes if 0 <= i < len(reader.episodes)]
    )
    if episodes is not None and len(chosen) != len(episodes):
        raise DatasetError(f"episode numbers must be between 0 and {len(reader.episodes) - 1}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for episode in chosen:
        table = reader.episode_table(episode, columns=["timestamp", *keys])
        t = table.column("timestamp").to_numpy()
        series = {}
        for key in keys:
            column = table.column(key).combine_chunks()
            width = features[key]["shape"][0]
            series[key] = (
                column.flatten().to_numpy(zero_copy_only=False).reshape(len(t), width)
                if width > 1
                else column.to_numpy().reshape(-1, 1)
            )
        width = max(v.shape[1] for v in series.values())
        names = features[keys[0]].get("names") or [f"{keys[0]}[{i}]" for i in range(width)]
        fig, axes = plt.subplots(width, 1, figsize=(10, 1.8 * width + 0.8), sharex=True, squeeze=False)
        for joint in range(width):
            ax = axes[joint][0]
            for key, style in zip(keys, ("-", "--"), strict=False):
                if joint < series[key].shape[1]:
                    ax.plot(t, series[key][:, joint], style, label=key, linewidth=1.2)
            ax.set_ylabel(str(names[joint]) if joint < len(names) else str(joint), fontsize=8)
            ax.grid(alpha=0.3)
        axes[0][0].legend(loc="upper right", fontsize=8)
        axes[-1][0].set_xlabel("time (s)")
        tasks = ", ".join(episode.get("tasks") or [])
        fig.suptitle(f"episode {episode['episode_index']}: {tasks}", fontsize=10)
        fig.tight_layout()
        path = out_dir / f"episode_{episode['episode_index']:06d}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written

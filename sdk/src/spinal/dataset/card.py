"""The dataset card (README.md) written next to a converted dataset, as the Hugging Face Hub shows it.

Written by `spinal dataset convert` and `merge`; its YAML header points the Hub viewer at the parquet files.
"""

from __future__ import annotations

from pathlib import Path

from spinal.dataset import layout


def write_card(root: Path, repo_id: str) -> None:
    info = layout.read_json(root / layout.INFO_PATH)
    features = ", ".join(f"`{key}`" for key in info["features"])
    text = f"""---
license: apache-2.0
task_categories:
- robotics
tags:
- LeRobot
- spinal
configs:
- config_name: default
  data_files: data/*/*.parquet
---

# {repo_id}

A LeRobotDataset {info["codebase_version"]} recorded with spinal: {info["total_episodes"]} episodes,
{info["total_frames"]} frames at {info["fps"]} fps, robot `{info["robot_type"]}`, {info["total_tasks"]} task(s).

Features: {features}.

Load it with `lerobot.datasets.lerobot_dataset.LeRobotDataset("{repo_id}")`.
"""
    (root / "README.md").write_text(text)

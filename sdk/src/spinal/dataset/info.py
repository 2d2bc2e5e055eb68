"""`spinal dataset info`: a short description of a dataset (size, episodes, tasks, features, videos).

Used by the CLI; reads only metadata, never the rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spinal.dataset.reader import DatasetReader


def dataset_info(root: Path) -> dict[str, Any]:
    reader = DatasetReader(root)
    info = reader.info
    episodes = reader.episodes
    videos = {}
    for key in reader.video_keys:
        video = info["features"][key].get("info", {})
        files = {reader.video_path(e, key) for e in episodes}
        videos[key] = {
            "codec": video.get("video.codec"),
            "size": f"{video.get('video.width')}x{video.get('video.height')}",
            "pix_fmt": video.get("video.pix_fmt"),
            "files": len(files),
        }
    size = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
    return {
        "root": str(root),
        "codebase_version": info.get("codebase_version"),
        "robot_type": info.get("robot_type"),
        "fps": reader.fps,
        "episodes": len(episodes),
        "frames": info.get("total_frames"),
        "duration_s": round(info.get("total_frames", 0) / reader.fps, 3),
        "tasks": reader.tasks,
        "features": {
            key: {"dtype": ft.get("dtype"), "shape": ft.get("shape"), "names": ft.get("names")}
            for key, ft in info["features"].items()
        },
        "videos": videos,
        "data_files": len(reader.data_files()),
        "size_bytes": size,
    }

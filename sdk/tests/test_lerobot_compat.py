"""LeRobot's own `LeRobotDataset` loads a converted dataset (opt-in: needs a Python with `lerobot` installed).

LeRobot pins torch<2.11, and its PyPI wheels pull CUDA builds, so it is not part of the dev environment. Point
SPINAL_LEROBOT_PYTHON at an interpreter that has `lerobot` (and torchcodec) to run this check.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

LEROBOT_PYTHON = os.environ.get("SPINAL_LEROBOT_PYTHON")

_SCRIPT = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
from lerobot.datasets.lerobot_dataset import LeRobotDataset
root = sys.argv[1]
ds = LeRobotDataset("local/spinal-check", root=root, video_backend="torchcodec")
keys = ds.meta.video_keys
items = [ds[i] for i in (0, len(ds) // 2, len(ds) - 1)]
window = LeRobotDataset(
    "local/spinal-check", root=root, video_backend="torchcodec",
    delta_timestamps={keys[0]: [-2 / ds.fps, 0.0], "action": [i / ds.fps for i in range(5)]},
)[10]
print(json.dumps({
    "frames": len(ds), "episodes": ds.num_episodes, "video_keys": keys,
    "image_shape": list(items[0][keys[0]].shape), "state_shape": list(items[0]["observation.state"].shape),
    "tasks": [item["task"] for item in items], "window_image": list(window[keys[0]].shape),
    "window_action": list(window["action"].shape), "stats": sorted(ds.meta.stats),
}))
"""


@pytest.mark.skipif(
    not LEROBOT_PYTHON, reason="set SPINAL_LEROBOT_PYTHON to a Python that has lerobot installed"
)
def test_lerobots_own_loader_reads_every_part_of_a_converted_dataset(converted):
    completed = subprocess.run(
        [LEROBOT_PYTHON, "-c", _SCRIPT, str(converted)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["frames"] == 144 and result["episodes"] == 3
    assert result["video_keys"] == ["observation.images.front", "observation.images.wrist"]
    assert result["image_shape"] == [3, 96, 128] and result["state_shape"] == [6]
    assert result["tasks"] == ["pick the cube", "pick the cube", "place the cube"]
    assert result["window_image"] == [2, 3, 96, 128] and result["window_action"] == [5, 6]
    assert "observation.images.front" in result["stats"]

"""What a recording session is asked to do (`spinal record`'s options), validated once.

Built by the command from its arguments; read by every part of `spinal.record`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from spinal.record.errors import SessionSetupError

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
MAX_TASK_CHARS = 1000  # what the device accepts for a task sentence


class RecordMode(StrEnum):
    """Who drives the arm while episodes record."""

    TELEOP = "teleop"  # a person, through the leader arm
    POLICY = "policy"  # the remote policy


@dataclass(frozen=True)
class SessionOptions:
    """One session: N episodes of `episode_time_s` with `reset_time_s` between them, then a dataset at `out_dir`."""

    device_url: str
    task: str
    episodes: int
    episode_time_s: float
    reset_time_s: float
    mode: RecordMode
    out_dir: Path
    repo_id: str
    token: str | None = None
    resume: bool = False
    pull_every: int = 0  # 0: pull and convert only at the end
    recordings_dir: Path | None = None  # default: <out_dir>.recordings next to the dataset
    ready_timeout_s: float = 120.0  # how long arming may wait for the policy to stream
    reconnect_timeout_s: float = 300.0  # how long a lost device is waited for before the session gives up
    poll_interval_s: float = 0.5
    convert_workers: int = 2
    #: The device ends an episode by itself this long after `episode_time_s`, should the session be unable to
    #: stop it (link lost, laptop asleep): no episode records on and on without the session.
    device_limit_margin_s: float = 5.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", _mode(self.mode))
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.recordings_dir is not None:
            object.__setattr__(self, "recordings_dir", Path(self.recordings_dir))
        task = self.task.strip()
        if not task:
            raise SessionSetupError(
                "--task is empty; give the instruction the episodes show, e.g. 'pick the cube'"
            )
        if len(task) > MAX_TASK_CHARS:
            raise SessionSetupError(f"--task is {len(task)} characters long; keep it under {MAX_TASK_CHARS}")
        object.__setattr__(self, "task", task)
        if self.episodes < 1:
            raise SessionSetupError(f"--episodes {self.episodes} is invalid; record at least 1 episode")
        if not 0 < self.episode_time_s <= 24 * 3600:
            raise SessionSetupError(
                f"--episode-time {self.episode_time_s:g} is invalid; give the episode length in seconds (> 0)"
            )
        if not 0 <= self.reset_time_s <= 24 * 3600:
            raise SessionSetupError(
                f"--reset-time {self.reset_time_s:g} is invalid; give the reset period in seconds (0 for none)"
            )
        if not 0 <= self.device_limit_margin_s <= 3600:
            raise SessionSetupError(
                f"device_limit_margin_s {self.device_limit_margin_s:g} is invalid; give 0 to 3600 seconds"
            )
        if self.pull_every < 0:
            raise SessionSetupError(f"--pull-every {self.pull_every} is invalid; give 0 (at the end) or more")
        if not _REPO_ID.match(self.repo_id):
            raise SessionSetupError(
                f"--repo-id {self.repo_id!r} is invalid; use a Hugging Face style name such as me/so101_pick"
            )

    @property
    def raw_dir(self) -> Path:
        """Where the session's episodes are pulled to (and its journal lives)."""
        return self.recordings_dir or self.out_dir.with_name(self.out_dir.name + ".recordings")


def _mode(value: RecordMode | str) -> RecordMode:
    try:
        return RecordMode(value)
    except ValueError:
        raise SessionSetupError(f"--mode {value!r} is invalid; use teleop or policy") from None

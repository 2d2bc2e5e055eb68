"""One episode's annotation job: its frames, the backend, seeded randomness and what earlier modules staged.

Built by the pipeline for each episode and handed to every module's `run`.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spinal.annotate.backends.base import LabelBackend
from spinal.annotate.errors import FramesError
from spinal.annotate.frames import ContactSheet, contact_sheets, decode_frames, single_frame_jpeg
from spinal.annotate.settings import AnnotateSettings
from spinal.language.v3_dataset import EpisodeFrames

Row = dict[str, Any]


@dataclass
class EpisodeJob:
    """Everything a module needs to annotate one episode."""

    frames: EpisodeFrames
    settings: AnnotateSettings
    backend: LabelBackend
    plan_camera: str | None
    vqa_cameras: list[str]
    staged: dict[str, list[Row]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def episode(self) -> int:
        return self.frames.index

    @property
    def task(self) -> str:
        return self.frames.task

    def times(self) -> list[float]:
        """Frame timestamps as Python floats of the stored float32 values (exactly what the writer matches)."""
        return [float(t) for t in self.frames.timestamps]

    def rng(self, module: str, *extra: object) -> random.Random:
        """A random source seeded by run seed, episode and module: reruns draw the same."""
        return random.Random(":".join(map(str, (self.settings.seed, self.episode, module, *extra))))

    def snap(self, t: float) -> float:
        """The frame timestamp nearest to `t`."""
        times = self.times()
        i = bisect.bisect_left(times, t)
        candidates = [times[j] for j in (i - 1, i) if 0 <= j < len(times)]
        return min(candidates, key=lambda x: abs(x - t))

    def sample_times(self, per_second: float) -> list[float]:
        """Frame timestamps about `per_second` apart, always including the first frame."""
        times = self.times()
        out: list[float] = []
        for t in times:
            if not out or t - out[-1] >= 1.0 / per_second - 1e-6:
                out.append(t)
        return out

    def _span(self, camera: str | None):
        if camera is None:
            raise FramesError(f"Episode {self.episode} has no camera to sample frames from; pass --camera.")
        span = self.frames.videos.get(camera)
        if span is None:
            raise FramesError(f"Episode {self.episode} has no video for {camera}; check meta/episodes.")
        return span

    def sheets(self, times: list[float], *, camera: str | None = None) -> list[ContactSheet]:
        """Timestamped contact sheets of the plan camera at `times` (none when the backend needs no images)."""
        if not self.backend.wants_images or not times:
            return []
        frames = decode_frames(self._span(camera or self.plan_camera), times)
        return contact_sheets(frames, times, tiles_per_sheet=self.settings.subtasks.tiles_per_sheet)

    def frame_urls(self, camera: str, times: list[float]) -> list[str | None]:
        """One JPEG data URL per time for `camera` (None each when the backend needs no images)."""
        if not self.backend.wants_images:
            return [None] * len(times)
        return [single_frame_jpeg(f) for f in decode_frames(self._span(camera), times)]


def numbered(items: list[str]) -> str:
    """A plan's text: the subtasks still to do as a numbered list."""
    return "\n".join(f"{i}. {text}" for i, text in enumerate(items, start=1))


def float32(t: float) -> float:
    return float(np.float32(t))

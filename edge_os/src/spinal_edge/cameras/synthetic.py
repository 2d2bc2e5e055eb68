"""The synthetic camera: renders the (simulated or real) arm from its latest joint state as MJPEG frames.

Used by `make demo`, the end-to-end tests and the benchmark, wherever no real camera is plugged in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import simplejpeg

from spinal_edge.cameras.arm_drawing import VIEWS, ArmPainter
from spinal_edge.cameras.source import CameraSource
from spinal_edge.settings import CameraSettings

JointSource = Callable[[], "np.ndarray | None"]


class SyntheticCamera(CameraSource):
    """Renders at the configured fps on its own deadline; frames flow exactly like a UVC camera's JPEGs."""

    kind = "synthetic"

    def __init__(self, name: str, settings: CameraSettings, joints: JointSource | None = None) -> None:
        super().__init__(name, settings)
        self._joints = joints or (lambda: None)
        self._painter = ArmPainter(settings.width, settings.height, VIEWS[settings.view])

    def set_joint_source(self, joints: JointSource) -> None:
        self._joints = joints

    def render_jpeg(self, joints: np.ndarray | None) -> bytes:
        """One frame of the arm at `joints` as JPEG bytes (RGB)."""
        pixels = self._painter.render(joints)
        return simplejpeg.encode_jpeg(pixels, quality=self.settings.jpeg_quality, colorspace="RGB")

    def _frames(self) -> Iterator[tuple[bytes, int, int, int | None]]:
        period_ns = int(1e9 / self.settings.fps)
        deadline = time.monotonic_ns()
        while not self._stop.is_set():
            joints = self._joints()
            t_ns = time.monotonic_ns()
            yield self.render_jpeg(joints), self.settings.width, self.settings.height, t_ns
            deadline += period_ns
            now = time.monotonic_ns()
            if deadline < now - period_ns:
                deadline = now  # fell behind (a loaded machine): skip ahead instead of bursting
            if self._stop.wait(max(0.0, (deadline - now) / 1e9)):
                return

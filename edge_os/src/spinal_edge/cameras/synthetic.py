"""The synthetic camera: renders the (simulated or real) arm from its latest joint state as MJPEG frames.

Used by `make demo`, the end-to-end tests and the benchmark, wherever no real camera is plugged in. Frames are
drawn in a child process (`render_worker`), like a real camera delivering them from outside the daemon.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np
import simplejpeg

from spinal_edge.cameras.arm_drawing import VIEWS, ArmPainter
from spinal_edge.cameras.render_protocol import read_message, write_message
from spinal_edge.cameras.source import CameraSource
from spinal_edge.settings import CameraSettings

JointSource = Callable[[], "np.ndarray | None"]


class SyntheticCamera(CameraSource):
    """Renders at the configured fps on its own deadline; frames flow exactly like a UVC camera's JPEGs."""

    kind = "synthetic"

    def __init__(
        self,
        name: str,
        settings: CameraSettings,
        joints: JointSource | None = None,
        *,
        out_of_process: bool = True,
    ) -> None:
        super().__init__(name, settings)
        self._joints = joints or (lambda: None)
        self._painter = ArmPainter(settings.width, settings.height, VIEWS[settings.view])
        self._out_of_process = out_of_process
        self._worker: subprocess.Popen[bytes] | None = None

    def set_joint_source(self, joints: JointSource) -> None:
        self._joints = joints

    def render_jpeg(self, joints: np.ndarray | None) -> bytes:
        """One frame of the arm at `joints` as JPEG bytes (RGB)."""
        pixels = self._painter.render(joints)
        return simplejpeg.encode_jpeg(pixels, quality=self.settings.jpeg_quality, colorspace="RGB")

    def _frames(self) -> Iterator[tuple[bytes, int, int, int | None]]:
        render = self._start_worker() if self._out_of_process else self.render_jpeg
        period_ns = int(1e9 / self.settings.fps)
        deadline = time.monotonic_ns()
        while not self._stop.is_set():
            joints = self._joints()
            t_ns = time.monotonic_ns()
            yield render(joints), self.settings.width, self.settings.height, t_ns
            deadline += period_ns
            now = time.monotonic_ns()
            if deadline < now - period_ns:
                deadline = now  # fell behind (a loaded machine): skip ahead instead of bursting
            if self._stop.wait(max(0.0, (deadline - now) / 1e9)):
                return

    def _start_worker(self) -> Callable[[np.ndarray | None], bytes]:
        s = self.settings
        self._worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spinal_edge.cameras.render_worker",
                "--width",
                str(s.width),
                "--height",
                str(s.height),
                "--view",
                s.view,
                "--quality",
                str(s.jpeg_quality),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        worker = self._worker
        assert worker.stdin is not None and worker.stdout is not None
        inp, out = worker.stdin, worker.stdout

        def render(joints: np.ndarray | None) -> bytes:
            write_message(inp, b"" if joints is None else np.asarray(joints, dtype="<f4").tobytes())
            jpeg = read_message(out)
            if jpeg is None:
                raise OSError(f"the renderer of camera {self.name} exited ({worker.poll()})")
            return jpeg

        return render

    def _close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        for stream in (worker.stdin, worker.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # the worker may be gone already (signalled with us)
                    stream.close()
        try:
            worker.wait(5)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)

"""A Raspberry Pi camera through picamera2 (only where the platform has it), delivered as JPEG frames.

picamera2 gives pixel arrays; they are JPEG-encoded once here (libjpeg-turbo) so they flow like a UVC camera's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import simplejpeg

from spinal_edge.cameras.source import CameraSource
from spinal_edge.errors import DeviceError


def picamera2_available() -> bool:
    try:
        import picamera2  # noqa: F401
    except Exception:
        return False
    return True


class PiCamera(CameraSource):
    kind = "picamera2"

    def __init__(self, name, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(name, settings)
        self._camera: Any = None

    def _frames(self) -> Iterator[tuple[bytes, int, int, int | None]]:
        try:
            from picamera2 import Picamera2
        except Exception as exc:
            raise DeviceError(
                f'camera {self.name}: picamera2 is not installed; install python3-picamera2 or use kind = "uvc"'
            ) from exc
        s = self.settings
        index = int(s.device) if s.device.isdigit() else 0
        self._camera = Picamera2(index)
        # "BGR888" is picamera2's name for arrays in R, G, B byte order (it names formats by word layout).
        config = self._camera.create_video_configuration(
            main={"size": (s.width, s.height), "format": "BGR888"}, controls={"FrameRate": float(s.fps)}
        )
        self._camera.configure(config)
        self._camera.start()
        while not self._stop.is_set():
            pixels = self._camera.capture_array("main")
            t_ns = time.monotonic_ns()
            jpeg = simplejpeg.encode_jpeg(pixels, quality=s.jpeg_quality, colorspace="RGB")
            yield jpeg, pixels.shape[1], pixels.shape[0], t_ns

    def _close(self) -> None:
        if self._camera is not None:
            try:
                self._camera.stop()
                self._camera.close()
            finally:
                self._camera = None

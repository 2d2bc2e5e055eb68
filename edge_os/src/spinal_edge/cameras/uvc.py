"""A USB (UVC) camera through V4L2 and PyAV, delivering the camera's own MJPEG packets without re-encoding.

Also reads a recorded MJPEG stream (`input_format = "mjpeg"`) paced at the configured fps, for tests and replays.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import av
import simplejpeg

from spinal_edge.cameras.source import CameraSource

_JPEG_SOI = b"\xff\xd8"


class UvcCamera(CameraSource):
    """Packets are demuxed, never decoded: the bytes that reach the server and the recorder are the camera's."""

    kind = "uvc"

    def __init__(self, name, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(name, settings)
        self.packets_rejected = 0

    def _options(self) -> dict[str, str]:
        s = self.settings
        if s.input_format == "v4l2":
            return {"input_format": "mjpeg", "video_size": f"{s.width}x{s.height}", "framerate": str(s.fps)}
        return {"framerate": str(s.fps)}

    def _frames(self) -> Iterator[tuple[bytes, int, int, int | None]]:
        live = self.settings.input_format == "v4l2"
        period_ns = int(1e9 / self.settings.fps)
        next_ns = time.monotonic_ns()
        while not self._stop.is_set():
            with av.open(
                self.settings.device,
                format=self.settings.input_format,
                options=self._options(),
                timeout=(5.0, 2.0),
            ) as container:
                stream = container.streams.video[0]
                for packet in container.demux(stream):
                    if self._stop.is_set():
                        return
                    if packet.size == 0:
                        continue
                    frame = self._checked(bytes(packet))
                    if frame is None:
                        continue
                    if not live:
                        # A file has no clock of its own: deliver it at the camera's rate, like the camera would.
                        next_ns += period_ns
                        delay = next_ns - time.monotonic_ns()
                        if delay > 0 and self._stop.wait(delay / 1e9):
                            return
                        next_ns = max(next_ns, time.monotonic_ns() - period_ns)
                    yield frame
            if live:
                # A live device ending its stream is a fault (unplugged); the base reopens it with backoff.
                raise OSError(f"{self.settings.device} stopped delivering frames")

    def _checked(self, data: bytes) -> tuple[bytes, int, int, None] | None:
        if data[:2] != _JPEG_SOI:
            self.packets_rejected += 1
            self.note_error(f"{self.settings.device} sent a packet that is not JPEG; set the camera to MJPEG")
            return None
        try:
            height, width, _cs, _sub = simplejpeg.decode_jpeg_header(data)
        except (ValueError, RuntimeError) as exc:
            self.packets_rejected += 1
            self.note_error(f"{self.settings.device} sent an unreadable JPEG header ({exc})")
            return None
        return data, width, height, None

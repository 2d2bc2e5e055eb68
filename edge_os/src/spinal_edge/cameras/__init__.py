"""Cameras: UVC/V4L2 (MJPEG passthrough), picamera2, and the synthetic arm camera, each filling a FrameSlot.

`open_camera` builds one from its `[cameras.NAME]` settings; the daemon starts and stops them.
"""

from __future__ import annotations

from spinal_edge.cameras.frames import CameraFrame, FrameSlot
from spinal_edge.cameras.picam import PiCamera, picamera2_available
from spinal_edge.cameras.source import CameraSource, CameraStats
from spinal_edge.cameras.synthetic import JointSource, SyntheticCamera
from spinal_edge.cameras.uvc import UvcCamera
from spinal_edge.settings import CameraSettings


def open_camera(name: str, settings: CameraSettings, joints: JointSource | None = None) -> CameraSource:
    """The camera for `settings.kind` (not started yet)."""
    if settings.kind == "synthetic":
        return SyntheticCamera(name, settings, joints)
    if settings.kind == "picamera2":
        return PiCamera(name, settings)
    return UvcCamera(name, settings)


__all__ = [
    "CameraFrame",
    "CameraSettings",
    "CameraSource",
    "CameraStats",
    "FrameSlot",
    "JointSource",
    "PiCamera",
    "SyntheticCamera",
    "UvcCamera",
    "open_camera",
    "picamera2_available",
]

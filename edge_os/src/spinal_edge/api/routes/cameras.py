"""Camera list, snapshots (the latest JPEG exactly as the camera delivered it) and live camera changes.

A change (name, resolution, fps, device) goes through the settings store: validated, saved, then applied by
restarting just that camera (`spinal_edge.live_cameras`); a refused change leaves everything as it was.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from spinal_edge.api.auth import require_principal
from spinal_edge.api.deps import get_daemon
from spinal_edge.api.models import ErrorBody
from spinal_edge.cameras.source import CameraStats
from spinal_edge.control.ports import RobotMode
from spinal_edge.daemon import EdgeDaemon
from spinal_edge.errors import ConfigError
from spinal_edge.settings_store import REMOVED

router = APIRouter(prefix="/api/cameras", tags=["cameras"], dependencies=[Depends(require_principal)])

# The same rule as `[cameras.NAME]` in edge.toml; the name becomes the feature `observation.images.NAME`.
CAMERA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class CameraChange(BaseModel):
    """What to change on one camera; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, max_length=64, description="a new name: lowercase letter, then letters, digits or _"
    )
    width: int | None = Field(None, description="pixels, 32..3840")
    height: int | None = Field(None, description="pixels, 32..2160")
    fps: int | None = Field(None, description="frames per second, 1..120")
    device: str | None = Field(None, max_length=256, description="the V4L2 device, e.g. /dev/video0")


class CameraChanged(BaseModel):
    """A camera change that was saved and applied."""

    name: str
    feature: str = Field(description="the observation key the policy sees: observation.images.NAME")
    renamed_from: str | None
    settings: dict[str, Any]
    restarted: bool


@router.get("", response_model=list[CameraStats])
def cameras(daemon: EdgeDaemon = Depends(get_daemon)) -> list[CameraStats]:
    return [cam.stats() for cam in dict(daemon.cameras).values()]


@router.put(
    "/{name}",
    response_model=CameraChanged,
    operation_id="update_camera",
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
def update_camera(
    name: str, change: CameraChange, request: Request, daemon: EdgeDaemon = Depends(get_daemon)
) -> CameraChanged:
    """Rename a camera or change its resolution, fps or device; saved, then applied by restarting just that
    camera. The policy's camera names must match the new name: the next inference handshake checks them."""
    configured = daemon.config.cameras
    if name not in configured:
        raise _refuse(
            request, 404, "not_found", f"there is no camera named {name!r}; GET /api/cameras lists them"
        )
    new_name = name if change.name is None else change.name.strip()
    if not CAMERA_NAME.match(new_name):
        raise _refuse(
            request,
            422,
            "bad_name",
            f"camera name {new_name!r} is not usable; use a lowercase letter followed by up to 31 lowercase"
            " letters, digits or _ (e.g. wrist)",
        )
    if new_name != name and new_name in configured:
        raise _refuse(
            request, 409, "name_taken", f"a camera named {new_name!r} exists already; choose another name"
        )
    if daemon.recorder is not None and daemon.recorder.recording:
        raise _refuse(request, 409, "recording", "an episode is recording; stop it before changing a camera")
    if daemon.loop.mode is RobotMode.POLICY:
        raise _refuse(
            request, 409, "policy", "the policy is driving the arm; press Hold before changing a camera"
        )
    values = change.model_dump(exclude={"name"}, exclude_none=True)
    if new_name == name:
        patch: dict[str, Any] = {name: values}
    else:
        patch = {name: dict(REMOVED), new_name: {**configured[name].model_dump(mode="json"), **values}}
    before = configured[name]
    try:
        config = daemon.store.update({"cameras": patch})
    except ConfigError:
        _count(request, "invalid")
        raise  # 422 naming the field and the fix; the previous settings stay in force
    settings = config.cameras[new_name]
    return CameraChanged(
        name=new_name,
        feature=f"observation.images.{new_name}",
        renamed_from=None if new_name == name else name,
        settings=settings.model_dump(mode="json"),
        restarted=new_name != name or settings != before,
    )


def _count(request: Request, why: str) -> None:
    counter: Counter[str] | None = getattr(request.app.state, "camera_changes_refused", None)
    if counter is None:
        counter = request.app.state.camera_changes_refused = Counter()
    counter[why] += 1


def _refuse(request: Request, status: int, why: str, detail: str) -> HTTPException:
    _count(request, why)
    return HTTPException(status, detail)


@router.get(
    "/{name}/snapshot",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the latest frame"},
        404: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
)
def snapshot(name: str, daemon: EdgeDaemon = Depends(get_daemon)) -> Response:
    """The camera's latest JPEG; headers X-Frame-Index and X-Frame-Age-Ms say which and how old."""
    if name not in daemon.cameras:
        raise HTTPException(404, f"there is no camera named {name!r}; GET /api/cameras lists them")
    frame = daemon.snapshot(name)
    if frame is None:
        raise HTTPException(503, f"camera {name!r} has not delivered a frame yet; check its status")
    age_ms = (time.monotonic_ns() - frame.t_mono_ns) / 1e6
    return Response(
        frame.jpeg,
        media_type="image/jpeg",
        headers={
            "X-Frame-Index": str(frame.index),
            "X-Frame-Age-Ms": f"{age_ms:.1f}",
            "Cache-Control": "no-store",
        },
    )

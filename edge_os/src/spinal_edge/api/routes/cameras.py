"""Camera list and snapshots (the latest JPEG exactly as the camera delivered it)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, HTTPException, Response

from spinal_edge.api.auth import require_principal
from spinal_edge.api.deps import get_daemon
from spinal_edge.api.models import ErrorBody
from spinal_edge.cameras.source import CameraStats
from spinal_edge.daemon import EdgeDaemon

router = APIRouter(prefix="/api/cameras", tags=["cameras"], dependencies=[Depends(require_principal)])


@router.get("", response_model=list[CameraStats])
def cameras(daemon: EdgeDaemon = Depends(get_daemon)) -> list[CameraStats]:
    return [cam.stats() for cam in daemon.cameras.values()]


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

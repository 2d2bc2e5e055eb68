"""The current episode: start, stop, discard, reset (the recorded episodes live under /api/episodes)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, status

from spinal_edge.api.auth import require_principal
from spinal_edge.api.deps import get_daemon
from spinal_edge.api.models import (
    Episode,
    EpisodeResetResponse,
    EpisodeStarted,
    EpisodeStartRequest,
    EpisodeState,
    ErrorBody,
)
from spinal_edge.daemon import EdgeDaemon
from spinal_edge.errors import ModeError

router = APIRouter(prefix="/api/episode", tags=["episode"], dependencies=[Depends(require_principal)])

_CONFLICT = {409: {"model": ErrorBody, "description": "the recorder's state does not allow this now"}}


@router.get("", response_model=EpisodeState)
def current(daemon: EdgeDaemon = Depends(get_daemon)) -> EpisodeState:
    """Whether an episode is recording, and the current and the last finished episode."""
    recorder = daemon.recorder
    if recorder is None:
        raise ModeError("recording is off; set [recording] enabled = true")
    info = recorder.status()
    return EpisodeState(
        recording=recorder.recording,
        recorder_state=info["state"],
        episode=info["episode"],
        last_episode=info["last_episode"],
    )


@router.post(
    "/start",
    response_model=EpisodeStarted,
    status_code=status.HTTP_201_CREATED,
    responses={
        **_CONFLICT,
        507: {
            "model": ErrorBody,
            "description": "recording is impossible: error `DiskFullError` when the disk guard refuses (free"
            " space below [recording] min_free_mb), `RecorderError` for any other recorder failure",
        },
    },
)
def start(
    body: EpisodeStartRequest | None = None, daemon: EdgeDaemon = Depends(get_daemon)
) -> EpisodeStarted:
    """Start recording a new episode with the given task (or the current one), optionally time-limited."""
    body = body or EpisodeStartRequest()
    started = daemon.start_episode(body.task, max_duration_s=body.max_duration_s)
    return EpisodeStarted(**started.episode.__dict__, engine_reset_acked=started.engine_reset_acked)


@router.post("/stop", response_model=Episode, responses=_CONFLICT)
def stop(daemon: EdgeDaemon = Depends(get_daemon)) -> Episode:
    """Finish the episode and keep it (it appears under /api/episodes)."""
    return Episode(**daemon.stop_episode().__dict__)


@router.post("/discard", response_model=Episode, responses=_CONFLICT)
def discard(daemon: EdgeDaemon = Depends(get_daemon)) -> Episode:
    """Finish the episode and delete its files."""
    return Episode(**daemon.discard_episode().__dict__)


@router.post("/reset", response_model=EpisodeResetResponse)
def reset(daemon: EdgeDaemon = Depends(get_daemon)) -> EpisodeResetResponse:
    """An episode boundary for the policy: the arm holds, the inference queue and server state start clean."""
    return EpisodeResetResponse(**daemon.reset_episode())

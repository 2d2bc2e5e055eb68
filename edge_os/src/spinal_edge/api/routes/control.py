"""Who drives the arm: mode, hold, e-stop, torque, and the task sentence."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from spinal_edge.api.auth import require_principal
from spinal_edge.api.deps import get_daemon
from spinal_edge.api.models import (
    ErrorBody,
    ModeRequest,
    ModeResponse,
    TaskRequest,
    TaskResponse,
    TorqueRequest,
)
from spinal_edge.daemon import EdgeDaemon

router = APIRouter(prefix="/api", tags=["control"], dependencies=[Depends(require_principal)])


@router.get("/mode", response_model=ModeResponse)
def get_mode(daemon: EdgeDaemon = Depends(get_daemon)) -> ModeResponse:
    return ModeResponse(mode=daemon.loop.mode)


@router.post("/mode", response_model=ModeResponse, responses={409: {"model": ErrorBody}})
def set_mode(body: ModeRequest, daemon: EdgeDaemon = Depends(get_daemon)) -> ModeResponse:
    """Switch to idle, teleop or policy; the arm holds at every change. 409 when the mode is not possible."""
    return ModeResponse(mode=daemon.set_mode(body.mode))


@router.post("/hold", response_model=ModeResponse)
def hold(daemon: EdgeDaemon = Depends(get_daemon)) -> ModeResponse:
    """Stop whatever drives the arm and keep its position (mode becomes idle)."""
    daemon.hold()
    return ModeResponse(mode=daemon.loop.mode)


@router.post("/estop", response_model=ModeResponse)
def estop(daemon: EdgeDaemon = Depends(get_daemon)) -> ModeResponse:
    """Emergency stop: torque off at once (enforced by the MCU), mode idle."""
    daemon.estop()
    return ModeResponse(mode=daemon.loop.mode)


@router.post("/torque", response_model=ModeResponse)
def torque(body: TorqueRequest, daemon: EdgeDaemon = Depends(get_daemon)) -> ModeResponse:
    """Torque on or off (mode becomes idle first)."""
    daemon.set_torque(body.enabled)
    return ModeResponse(mode=daemon.loop.mode)


@router.get("/task", response_model=TaskResponse)
def get_task(daemon: EdgeDaemon = Depends(get_daemon)) -> TaskResponse:
    return TaskResponse(task=daemon.task)


@router.put("/task", response_model=TaskResponse)
def set_task(body: TaskRequest, daemon: EdgeDaemon = Depends(get_daemon)) -> TaskResponse:
    """The instruction sent to the policy with each observation (and recorded with the next episode)."""
    daemon.set_task(body.task)
    return TaskResponse(task=daemon.task)

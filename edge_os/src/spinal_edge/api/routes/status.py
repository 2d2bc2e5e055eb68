"""Health (no auth), the daemon status, and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from spinal_edge import __version__
from spinal_edge.api.auth import require_principal
from spinal_edge.api.deps import get_daemon
from spinal_edge.api.models import Health, Status
from spinal_edge.daemon import EdgeDaemon

health_router = APIRouter(tags=["health"])
router = APIRouter(prefix="/api", tags=["status"], dependencies=[Depends(require_principal)])


@health_router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(daemon: EdgeDaemon = Depends(get_daemon)) -> JSONResponse:
    """Liveness for supervisors and load balancers: 200 while the control loop runs (no token needed)."""
    running = daemon.loop.running
    body = Health(
        ok=running,
        version=__version__,
        boot_id=daemon.boot_id,
        mode=daemon.loop.mode.value,
        loop_running=running,
    )
    return JSONResponse(body.model_dump(), status_code=200 if running else 503)


@router.get("/status", response_model=Status)
def status(daemon: EdgeDaemon = Depends(get_daemon)) -> dict:
    """Mode, inference state machine, loop timing, cameras, MCU, recorder and recent warnings."""
    return daemon.status()


def metrics(request: Request) -> Response:
    """Prometheus text exposition of the daemon's counters and gauges."""
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)

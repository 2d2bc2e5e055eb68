"""The device's HTTP application: composes the routers, the auth gate, error mapping and metrics.

`create_app(daemon, token=...)` is what `spinal-edge run` serves; the setup page (issue 9) adds its pages,
static files and session authenticator to the returned app (see edge_os/README.md, "The HTTP app").
"""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from spinal_edge import __version__
from spinal_edge.api.auth import AuthGate, BearerTokenAuth, require_principal
from spinal_edge.api.routes import cameras, control, episode, settings, status
from spinal_edge.daemon import EdgeDaemon
from spinal_edge.errors import ConfigError, DeviceError, EdgeError, EpisodeError, ModeError, RecorderError
from spinal_edge.metrics import DaemonCollector

log = logging.getLogger(__name__)

# How each daemon error reaches an HTTP client.
_STATUS_FOR: list[tuple[type[EdgeError], int]] = [
    (ConfigError, 422),
    (ModeError, 409),
    (EpisodeError, 409),
    (RecorderError, 507),
    (DeviceError, 503),
]

API_DESCRIPTION = """The spinal device API: run the arm (modes, hold, e-stop), record episodes, read status.

Every endpoint except `/healthz` needs `Authorization: Bearer <token>` (the token is in the daemon's data
directory, `api-token`). Errors come back as `{"error": "<class>", "detail": "<one sentence with the fix>"}`.
"""


def create_app(daemon: EdgeDaemon, *, token: str, public_metrics: bool = False) -> FastAPI:
    """The FastAPI app for `daemon`; `app.state.auth` is the gate other authenticators can join."""
    app = FastAPI(title="spinal-edge device API", version=__version__, description=API_DESCRIPTION)
    app.state.daemon = daemon
    app.state.auth = AuthGate([BearerTokenAuth(token)])

    app.include_router(status.health_router)
    app.include_router(status.router)
    app.include_router(control.router)
    app.include_router(episode.router)
    app.include_router(cameras.router)
    app.include_router(settings.router)
    _mount_episode_files(app, daemon)

    registry = CollectorRegistry(auto_describe=True)
    registry.register(
        DaemonCollector(daemon.status, lambda: {"spinal_edge_api_auth_refused_total": app.state.auth.refused})
    )
    app.state.metrics_registry = registry
    metrics_deps = [] if public_metrics else [Depends(require_principal)]
    app.add_api_route(
        "/metrics",
        status.metrics,
        methods=["GET"],
        tags=["status"],
        dependencies=metrics_deps,
        include_in_schema=True,
        summary="Prometheus metrics",
    )

    if daemon.config.web.enabled:
        from spinal_edge.web.mount import mount_setup_page

        mount_setup_page(app, daemon)

    @app.exception_handler(EdgeError)
    async def _edge_error(request: Request, exc: EdgeError) -> JSONResponse:
        code = next((c for cls, c in _STATUS_FOR if isinstance(exc, cls)), 500)
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=code)

    return app


def _mount_episode_files(app: FastAPI, daemon: EdgeDaemon) -> None:
    """The recorded episodes (list, download with ranges and checksums, delete): `spinal_edge.api.episodes`."""
    from spinal_edge.api.episodes import episodes_router

    app.include_router(episodes_router(daemon.config.episodes_dir(), require_principal))

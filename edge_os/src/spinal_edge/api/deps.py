"""FastAPI dependencies shared by the routers: the daemon and the settings store the app was built with."""

from __future__ import annotations

from fastapi import Request

from spinal_edge.daemon import EdgeDaemon


def get_daemon(request: Request) -> EdgeDaemon:
    return request.app.state.daemon

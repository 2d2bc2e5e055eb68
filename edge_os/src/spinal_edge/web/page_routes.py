"""The setup page's pages (server-rendered) and its live status stream (server-sent events).

Every page needs a logged-in session; without one the browser is sent to the login (or first-boot setup).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from spinal_edge.web.calibration import load_ranges
from spinal_edge.web.rendering import NAV, render
from spinal_edge.web.session_auth import session_of
from spinal_edge.web.sessions import BrowserSession
from spinal_edge.web.state import SetupPageState

router = APIRouter(include_in_schema=False)
EVENT_INTERVAL_S = 0.5
# A stream ends after this long; EventSource reconnects by itself, and shutdown never waits on old streams.
EVENT_STREAM_MAX_S = 300.0


def _web(request: Request) -> SetupPageState:
    return request.app.state.web


def _logged_in(request: Request) -> BrowserSession | Response:
    session = session_of(request)
    if session is not None and session.authenticated:
        return session
    return RedirectResponse("/login" if _web(request).account.is_set() else "/setup", status_code=303)


@router.get("/")
def root(request: Request) -> Response:
    return RedirectResponse("/status", status_code=303)


def _page(name: str, context: Any = None) -> Any:
    def handler(request: Request) -> Response:
        session = _logged_in(request)
        if isinstance(session, Response):
            return session
        extra = context(request) if context else {}
        return render(request, f"{name}.html", session=session, **extra)

    handler.__name__ = f"page_{name}"
    return handler


def _status_context(request: Request) -> dict[str, Any]:
    return {"status": request.app.state.daemon.status()}


def _robot_context(request: Request) -> dict[str, Any]:
    daemon = request.app.state.daemon
    names = tuple(daemon.arm.joint_names)
    ranges = load_ranges(daemon.config.calibration_path(), names)
    return {
        "joints": [
            {"index": i, "name": n, "range": None if ranges is None else ranges[i]}
            for i, n in enumerate(names)
        ],
        "calibrated": ranges is not None,
        "calibration_path": str(daemon.config.calibration_path()),
        "wizard": _web(request).calibration.view(),
    }


def _settings_context(request: Request) -> dict[str, Any]:
    daemon = request.app.state.daemon
    store = daemon.store
    return {
        "config": store.config.model_dump(mode="json"),
        "overlay_error": store.overlay_error,
    }


def _cameras_context(request: Request) -> dict[str, Any]:
    daemon = request.app.state.daemon
    ctx = _settings_context(request)
    running = dict(daemon.cameras)  # a copy: a camera change may swap them meanwhile
    ctx["cameras"] = [
        {"name": name, "feature": f"observation.images.{name}", "stats": running[name].stats()}
        for name in ctx["config"]["cameras"]
        if name in running
    ]
    return ctx


def _system_context(request: Request) -> dict[str, Any]:
    daemon = request.app.state.daemon
    usage = shutil.disk_usage(daemon.config.data_dir)
    return {
        "disk": {
            "total_gb": usage.total / 1e9,
            "free_gb": usage.free / 1e9,
            "used_pct": 100 * usage.used / usage.total,
        },
        "log_lines": request.app.state.web_log.lines(200),
        "data_dir": str(daemon.config.data_dir),
        "status": daemon.status(),
    }


def _network_context(request: Request) -> dict[str, Any]:
    web = _web(request)
    return {"managed": web.network is not None, "access_point": web.fallback.ssid if web.fallback else ""}


for _name, _ctx in (
    ("status", _status_context),
    ("robot", _robot_context),
    ("recording", _settings_context),
    ("inference", _settings_context),
    ("cameras", _cameras_context),
    ("network", _network_context),
    ("system", _system_context),
    ("account", None),
):
    router.add_api_route(f"/{_name}", _page(_name, _ctx), methods=["GET"], include_in_schema=False)
assert {n for n, _ in NAV} <= {r.path.strip("/") for r in router.routes}  # every nav entry has a page


@router.get("/events")
async def events(request: Request) -> Response:
    """The daemon status as server-sent events, twice a second, for the live pages."""
    session = session_of(request)
    if session is None or not session.authenticated:
        return Response("log in first", status_code=401)
    daemon = request.app.state.daemon
    web = _web(request)

    async def stream() -> Any:
        deadline = time.monotonic() + EVENT_STREAM_MAX_S
        yield "retry: 2000\n\n"
        while time.monotonic() < deadline and not web.stopping.is_set():
            if await request.is_disconnected() or web.sessions.get(session.id) is None:
                return
            payload = json.dumps(daemon.status(), default=str, separators=(",", ":"))
            yield f"event: status\ndata: {payload}\n\n"
            await asyncio.sleep(EVENT_INTERVAL_S)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )

"""Rendering the setup page's Jinja2 templates with the values every page needs and strict security headers.

Used by the account and page routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from spinal_edge import __version__
from spinal_edge.web.sessions import BrowserSession

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
NAV = (
    ("status", "Status"),
    ("robot", "Robot"),
    ("recording", "Recording"),
    ("inference", "Inference"),
    ("cameras", "Cameras"),
    ("network", "Network"),
    ("system", "System"),
)
# No inline script or style anywhere, so the policy can forbid both.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: Request,
    template: str,
    *,
    session: BrowserSession | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page `template` with the session's CSRF token, the device name and the navigation."""
    daemon = getattr(request.app.state, "daemon", None)
    page = template.removesuffix(".html")
    html = _env.get_template(template).render(
        csrf_token=session.csrf_token if session else "",
        logged_in=bool(session and session.authenticated),
        device_name=daemon.config.device_name if daemon is not None else "spinal",
        version=__version__,
        nav=NAV,
        page=page,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)

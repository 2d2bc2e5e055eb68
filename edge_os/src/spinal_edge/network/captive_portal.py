"""Captive-portal redirects while the fallback access point is up: any page a phone asks for leads to setup.

An ASGI middleware wrapped around the device's app; NetworkManager's DNS on the access point answers every name
with the device's address (see docs/setup-page.md), so foreign Host headers arrive here and are redirected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]


class CaptivePortal:
    """Redirect requests for other hosts to `portal_url()` while `active()` is true."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        active: Callable[[], bool],
        portal_url: Callable[[], str],
        own_hosts: Callable[[], set[str]],
    ) -> None:
        self.app = app
        self.active = active
        self.portal_url = portal_url
        self.own_hosts = own_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.active():
            await self.app(scope, receive, send)
            return
        host = ""
        for name, value in scope.get("headers", []):
            if name == b"host":
                host = value.decode("latin-1").rsplit(":", 1)[0].strip("[]").lower()
                break
        if not host or host in self.own_hosts():
            await self.app(scope, receive, send)
            return
        location = self.portal_url().encode("latin-1")
        await send(
            {
                "type": "http.response.start",
                "status": 302,
                "headers": [
                    (b"location", location),
                    (b"cache-control", b"no-store"),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

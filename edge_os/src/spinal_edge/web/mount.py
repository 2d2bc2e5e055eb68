"""`mount_setup_page(app, daemon)`: adds the setup page to the daemon's FastAPI app.

Called by `spinal_edge.api.app.create_app` when `[web] enabled`; joins the app's auth gate (session cookie +
CSRF next to the bearer token), adds the pages, static files, the page's device endpoints, the captive portal
and the access-point fallback.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from typing import Any

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from spinal_edge.network import (
    AccessPointFallback,
    CaptivePortal,
    FakeNetwork,
    NetworkControl,
    NmcliNetwork,
    device_suffix,
)
from spinal_edge.network.settings import NetworkSettings
from spinal_edge.web import account_routes, device_routes, page_routes
from spinal_edge.web.admin_account import ACCOUNT_FILE, AdminAccount
from spinal_edge.web.calibration import CalibrationWizard
from spinal_edge.web.connection_probe import ConnectionProbe, ZenohProbe
from spinal_edge.web.login_throttle import LoginThrottle
from spinal_edge.web.passwords import PasswordHasher
from spinal_edge.web.recent_log import RecentLog
from spinal_edge.web.rendering import STATIC
from spinal_edge.web.session_auth import SessionAuth, check_session_csrf
from spinal_edge.web.sessions import SessionStore
from spinal_edge.web.settings import WebSettings
from spinal_edge.web.setup_code import SETUP_CODE_FILE, SetupCode
from spinal_edge.web.state import SetupPageState
from spinal_edge.web.system_control import FakeSystemControl, SystemControl, SystemdControl

log = logging.getLogger(__name__)


def under_systemd() -> bool:
    """True when this process is a systemd service (systemd sets INVOCATION_ID for each run)."""
    return bool(os.environ.get("INVOCATION_ID"))


def _power(settings: WebSettings) -> SystemControl:
    if settings.power == "systemd" or (settings.power == "auto" and under_systemd()):
        return SystemdControl(settings.daemon_unit)
    return FakeSystemControl()


def _network(settings: NetworkSettings) -> NetworkControl | None:
    backend = settings.backend
    if backend == "auto":
        backend = "nmcli" if under_systemd() and shutil.which("nmcli") else "fake"
    if backend == "nmcli":
        return NmcliNetwork(wifi_interface=settings.wifi_interface)
    if backend == "fake":
        return FakeNetwork(ethernet=True, in_range={"demo-wifi": "demo-password"})
    return None


def mount_setup_page(
    app: FastAPI,
    daemon: Any,
    *,
    system: SystemControl | None = None,
    network: NetworkControl | None = None,
    probe: ConnectionProbe | None = None,
    hasher: PasswordHasher | None = None,
    announce: bool = True,
) -> SetupPageState:
    """Add the setup page to `app` (built by `create_app` for `daemon`); returns its state (`app.state.web`)."""
    config = daemon.config
    settings: WebSettings = getattr(config, "web", None) or WebSettings()
    net_settings: NetworkSettings = getattr(config, "network", None) or NetworkSettings()
    data_dir = config.data_dir
    network = network if network is not None else _network(net_settings)
    fallback = None
    if network is not None:
        fallback = AccessPointFallback(network, net_settings.access_point, device_suffix())
    web = SetupPageState(
        settings=settings,
        data_dir=data_dir,
        account=AdminAccount(data_dir / ACCOUNT_FILE, hasher=hasher),
        setup_code=SetupCode(data_dir / SETUP_CODE_FILE, mirror_paths=settings.setup_code_copies),
        sessions=SessionStore(
            idle_timeout_s=settings.session_idle_minutes * 60,
            absolute_timeout_s=settings.session_max_hours * 3600,
        ),
        login_throttle=LoginThrottle(),
        setup_throttle=LoginThrottle(),
        system=system or _power(settings),
        probe=probe or ZenohProbe(),
        calibration=CalibrationWizard(),
        network=network,
        fallback=fallback,
    )
    app.state.web = web
    recent = RecentLog()
    logging.getLogger().addHandler(recent)
    app.state.web_log = recent

    gate = app.state.auth
    gate.add(SessionAuth())
    gate.csrf_check = check_session_csrf

    app.include_router(account_routes.router)
    app.include_router(page_routes.router)
    app.include_router(device_routes.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    ap = net_settings.access_point
    if fallback is not None and ap.captive_portal:
        port = config.http.port

        def own_hosts() -> set[str]:
            names = {ap.address, "localhost", "127.0.0.1", "::1"}
            try:
                host = network.hostname()  # type: ignore[union-attr]
                names |= {host, f"{host}.local"}
            except Exception:
                pass
            return names

        app.add_middleware(
            CaptivePortal,
            active=fallback.active,
            portal_url=lambda: f"http://{ap.address}:{port}/setup",
            own_hosts=own_hosts,
        )
    if fallback is not None and ap.enabled and not isinstance(network, FakeNetwork):
        threading.Thread(
            target=fallback.check_at_boot, args=(web.stopping,), name="ap-fallback", daemon=True
        ).start()

    if not web.account.is_set():
        code, created = web.setup_code.ensure()
        if announce:
            # The console and the journal are where a person finds the code (and the boot partition file).
            print(
                f"spinal-edge setup code: {code}  (enter it on the setup page)", file=sys.stderr, flush=True
            )
        log.warning(
            "no admin password yet; the setup page asks for the setup code", extra={"new_code": created}
        )
    return web

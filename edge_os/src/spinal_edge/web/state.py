"""Everything the setup page holds while the daemon runs, built once by `mount_setup_page`.

Reached by the routes as `request.app.state.web`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from spinal_edge.network import AccessPointFallback, NetworkControl
from spinal_edge.web.admin_account import AdminAccount
from spinal_edge.web.calibration import CalibrationWizard
from spinal_edge.web.connection_probe import ConnectionProbe
from spinal_edge.web.login_throttle import LoginThrottle
from spinal_edge.web.sessions import SessionStore
from spinal_edge.web.settings import WebSettings
from spinal_edge.web.setup_code import SetupCode
from spinal_edge.web.system_control import SystemControl


@dataclass
class SetupPageState:
    """The parts of the setup page; any of network / fallback may be None when the device manages no network."""

    settings: WebSettings
    data_dir: Path
    account: AdminAccount
    setup_code: SetupCode
    sessions: SessionStore
    login_throttle: LoginThrottle
    setup_throttle: LoginThrottle
    system: SystemControl
    probe: ConnectionProbe
    calibration: CalibrationWizard
    network: NetworkControl | None = None
    fallback: AccessPointFallback | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    counters: dict[str, int] = field(
        default_factory=lambda: {"login_failed": 0, "setup_code_failed": 0, "csrf_refused": 0}
    )

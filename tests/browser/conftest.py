"""Fixtures for the setup page's browser tests: the daemon with the simulated rig (firmware in MicroPython driving
simulated Feetech servos) served on 127.0.0.1, Debian's Chromium through Playwright, and a stand-in policy server.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "setup-page"
PASSWORD = "robot arm 2024!"
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> Iterator[Any]:
    from spinal_hil.rig import SimulatedRig

    with SimulatedRig(workdir=tmp_path_factory.mktemp("rig")) as simulated:
        yield simulated


@pytest.fixture(scope="module")
def policy_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def device(rig, policy_port, tmp_path_factory) -> Iterator[Any]:
    """The real app for a daemon whose arm is the simulated rig, a synthetic camera and the recorder."""
    from spinal_edge.assembly import build_daemon
    from spinal_edge.settings_store import SettingsStore
    from spinal_edge.testing import ServedDaemon, data_dir_config

    data = tmp_path_factory.mktemp("device")
    raw = data_dir_config(
        data,
        device_name="bench-1",
        robot={"mcu_port": rig.host_port},
        inference={"engine": "none", "endpoints": [f"tcp/127.0.0.1:{policy_port}"], "model_id": "so101-demo"},
        cameras={"front": {"kind": "synthetic", "width": 160, "height": 120, "fps": 15}},
        recording={"min_free_mb": 16},
        web={"power": "fake"},
        network={"backend": "fake"},
    )
    with ServedDaemon(build_daemon(SettingsStore(raw))) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is missing; `make setup` installs it (apt-get install chromium).")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """A fresh phone-sized browser context (no cookies)."""
    context = browser.new_context(viewport={"width": 412, "height": 915}, accept_downloads=True)
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def log_in(page: Any, device: Any) -> None:
    """Through setup (first time) or login, ending on the Status page."""
    web = device.app.state.web
    page.goto(device.url + "/")
    if "/setup" in page.url:
        page.fill("input[name=setup_code]", web.setup_code.read())
        page.fill("input[name=password]", PASSWORD)
        page.fill("input[name=confirm]", PASSWORD)
        page.click("button[type=submit]")
    elif "/login" in page.url:
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
    page.wait_for_url("**/status")


class PolicyServerStandIn:
    """A Zenoh router on 127.0.0.1 answering `status` and `session` like spinal-server, with a chosen policy."""

    def __init__(self, port: int, status: Any) -> None:
        import zenoh
        from spinal.protocol.codec import encode_message, encode_status, peek_op
        from spinal.protocol.keys import ServiceKeys
        from spinal.protocol.messages import ResetAck, SessionAck

        conf = zenoh.Config()
        conf.insert_json5("mode", '"router"')
        conf.insert_json5("listen/endpoints", json.dumps([f"tcp/127.0.0.1:{port}"]))
        conf.insert_json5("scouting/multicast/enabled", "false")
        self.session = zenoh.open(conf)
        keys = ServiceKeys.for_service("so101-demo", "main", "default")
        self.opened: list[Any] = []

        def on_status(query: Any) -> None:
            query.reply(keys.status, encode_status(status))

        def on_session(query: Any) -> None:
            op = peek_op(query.payload.to_bytes())
            self.opened.append(op)
            if op == "close":
                query.reply(keys.session, encode_message(ResetAck()))
                return
            ack = SessionAck(
                accepted=True,
                session_id="s-1",
                action_names=list(status.action_names),
                state_dim=status.state_dim,
            )
            query.reply(keys.session, encode_message(ack))

        self._queryables = [
            self.session.declare_queryable(keys.status, on_status),
            self.session.declare_queryable(keys.session, on_session),
        ]

    def close(self) -> None:
        if self._queryables:
            for q in self._queryables:
                q.undeclare()
            self._queryables = []
            self.session.close()


@pytest.fixture
def login():
    """`login(page, device)`: through setup or login to the Status page."""
    return log_in


@pytest.fixture
def snap():
    """`snap(page, name)`: a full-page screenshot under test-artifacts/setup-page/."""
    return screenshot


@pytest.fixture
def policy_server():
    """`policy_server(port, status)` -> a started stand-in; every one made is closed after the test."""
    made: list[PolicyServerStandIn] = []

    def start(port: int, status: Any) -> PolicyServerStandIn:
        server = PolicyServerStandIn(port, status)
        made.append(server)
        return server

    try:
        yield start
    finally:
        for server in made:
            server.close()

"""The setup page in Debian's Chromium against the real app and the simulated rig: first-boot setup, live status,
every page (screenshots under test-artifacts/), calibration wizard, recording, test connection, auth and CSRF."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time

import pytest
from spinal.protocol.messages import Status

pytestmark = [pytest.mark.browser, pytest.mark.slow]
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _number(page, selector: str) -> float:
    text = page.inner_text(selector).strip()
    return float(text) if re.fullmatch(r"-?\d+(\.\d+)?", text) else float("nan")


def test_setup_code_then_password_then_live_status(device, page, login, snap):
    page.goto(device.url + "/")
    page.wait_for_url("**/setup")
    snap(page, "01-setup")
    page.fill("input[name=setup_code]", "WRONG-CODE-1234")
    page.fill("input[name=password]", "robot arm 2024!")
    page.fill("input[name=confirm]", "robot arm 2024!")
    page.click("button[type=submit]")
    assert "setup code is wrong" in page.inner_text("p.error")
    login(page, device)
    # Live values: the loop's tick counter grows through server-sent events, and the MCU link is up.
    page.wait_for_function(
        "() => Number(document.querySelector('[data-live=\"loop.ticks\"]').textContent) > 0"
    )
    first = _number(page, '[data-live="loop.ticks"]')
    page.wait_for_function(
        f"() => Number(document.querySelector('[data-live=\"loop.ticks\"]').textContent) > {first}"
    )
    page.wait_for_function(
        "() => document.querySelector('[data-live=\"mcu.connected\"]').textContent === 'connected'"
    )
    page.wait_for_function("() => document.querySelector('#live-dot').classList.contains('on')")
    page.wait_for_function(
        "() => document.querySelector('[data-live=\"mcu.positions.0\"]').textContent !== '–'"
    )
    assert page.is_visible("#estop")
    snap(page, "02-status")


def test_every_page_renders_with_the_estop_visible(device, page, login, snap):
    login(page, device)
    for name in ("status", "robot", "recording", "inference", "cameras", "network", "system", "account"):
        page.goto(f"{device.url}/{name}")
        assert page.is_visible("#estop"), name
        assert page.title().lower().startswith(name), name
        if name == "cameras":
            page.wait_for_function("() => document.querySelector('img[data-snapshot]').naturalWidth > 0")
        if name == "network":
            page.wait_for_function("() => document.querySelector('#connections li:not(.muted)') !== null")
        snap(page, f"page-{name}")
    page.goto(f"{device.url}/login")
    page.wait_for_url("**/status")  # already logged in
    page.click("button:has-text('Log out')")
    page.wait_for_url("**/login")
    snap(page, "page-login")


def test_estop_button_latches_the_mcu_estop(device, page, rig, login, snap):
    login(page, device)
    link = device.daemon.arm.link
    assert link.latest_state is not None and not link.latest_state.estopped
    page.click("#estop")
    page.wait_for_selector("#flash:has-text('done')")
    deadline = time.monotonic() + 10
    while not link.latest_state.estopped and time.monotonic() < deadline:
        time.sleep(0.05)
    assert link.latest_state.estopped  # the MCU itself latched the e-stop: torque off whatever the host sends
    assert not any(rig.torques().values())
    page.wait_for_function(
        "() => document.querySelector('[data-live=\"mcu.torque_enabled\"]').textContent === 'off'"
    )
    link.clear_estop().result(5)


def test_calibration_wizard_end_to_end_on_the_simulated_arm(device, page, rig, login, snap):
    login(page, device)
    page.goto(device.url + "/robot")
    page.click("#scan")
    page.wait_for_selector("#scan-result:not([hidden]) tbody tr")
    assert page.locator("#scan-result tbody tr").count() == 6
    page.click("#cal-start")
    page.wait_for_selector("#cal-step:not([hidden])")
    follower = rig.follower
    for index, joint in enumerate(JOINTS):
        servo_id = index + 1
        low, high = 900 + 10 * index, 3100 - 10 * index
        row = f'#cal-table tr[data-joint="{joint}"]'
        page.wait_for_selector(f"{row}.current")
        # A person moves the joint by hand to both ends (torque is off).
        for ticks in (2048, low, high, 2048):
            follower.servo(servo_id).set_position(ticks)
            page.wait_for_function(
                "([row, lo, hi, t]) => { const r = document.querySelector(row);"
                " const l = Number(r.querySelector('.low').textContent), h = Number(r.querySelector('.high').textContent);"
                " return t <= 2048 ? l <= Math.min(t, 2048) + 1 : h >= t - 1; }",
                arg=[row, low, high, ticks],
            )
        page.click("#cal-record")
        page.wait_for_function(f"() => document.querySelector('{row} .done').textContent === '✓'")
    page.click("#cal-save")
    page.wait_for_selector("#flash:has-text('Calibration saved')")
    snap(page, "03-calibrated")
    saved = json.loads(device.daemon.config.calibration_path().read_text())
    assert list(saved) == list(JOINTS)
    for index, joint in enumerate(JOINTS):
        assert abs(saved[joint]["range_min"] - (900 + 10 * index)) <= 2
        assert abs(saved[joint]["range_max"] - (3100 - 10 * index)) <= 2
        assert saved[joint]["id"] == index + 1


def test_recording_start_stop_lists_and_downloads_the_episode(device, page, tmp_path, login, snap):
    pytest.importorskip(
        "spinal_edge.api.episodes", reason="the episode file endpoints (issue 7) are not merged"
    )
    login(page, device)
    page.goto(device.url + "/recording")
    page.fill("#task", "wave at the camera")
    page.click("#rec-start")
    page.wait_for_function(
        "() => document.querySelector('[data-live=\"recorder.state\"]').textContent === 'recording'"
    )
    time.sleep(1.0)  # record about a second of frames
    page.click("#rec-stop")
    row = page.locator("#episodes tbody tr[data-episode]").first
    row.wait_for()
    assert "wave at the camera" in row.inner_text()
    snap(page, "04-recording")
    link = row.locator("a").first
    with page.expect_download() as download_info:
        link.click()
    target = tmp_path / "download.bin"
    download_info.value.save_as(target)
    assert target.stat().st_size > 0


def _status(action_names, cameras, state_dim) -> Status:
    return Status(
        model_repo="spinal/so101-demo",
        model_revision="main",
        policy_type="act",
        action_names=list(action_names),
        expected_cameras=list(cameras),
        state_dim=state_dim,
        chunk_size=50,
        trained_fps=30.0,
        serving_mode="shared",
        warmed_up=True,
        max_sessions=8,
    )


def test_test_connection_against_spinal_server_demo(device, page, login, snap, tmp_path):
    port, health = free_port(), free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spinal_server",
                "--demo",
                "--listen",
                f"tcp/127.0.0.1:{port}",
                "--health-port",
                str(health),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        match = None
        while match is None and time.monotonic() < deadline and server.poll() is None:
            match = re.search(
                r"status at (@[^/\s]+)/([^/\s]+)/([^/\s]+)/([^/\s]+)/status", log_path.read_text()
            )
            time.sleep(0.2)
        assert match, f"spinal-server --demo did not start:\n{log_path.read_text()[-2000:]}"
        root, model, revision, task = match.groups()
        patch = {
            "endpoints": [f"tcp/127.0.0.1:{port}"],
            "key_root": root,
            "model_id": model,
            "revision": revision,
            "service": task,
        }
        assert device.client.patch("/api/settings", json={"inference": patch}).status_code == 200
        login(page, device)
        page.goto(device.url + "/inference")
        deadline = time.monotonic() + 60
        while True:  # the server answers once its model is warm
            page.click("#test-connection")
            page.wait_for_selector("#probe-result:not([hidden])")
            page.wait_for_function("() => !document.querySelector('#test-connection').disabled")
            if "probe ok" in page.get_attribute("#probe-result", "class") or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        caps = page.inner_text("#probe-caps")
        assert "probe ok" in page.get_attribute("#probe-result", "class"), page.inner_text("#probe-result")
        assert model in caps and "shoulder_pan" in caps
        snap(page, "05-connection-spinal-server-demo")
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


def test_test_connection_shows_capabilities_then_the_exact_mismatch(
    device, page, policy_port, login, snap, policy_server
):
    stand_in = {
        "endpoints": [f"tcp/127.0.0.1:{policy_port}"],
        "key_root": "@lerobot",
        "model_id": "so101-demo",
    }
    stand_in.update(revision="main", service="default")
    assert device.client.patch("/api/settings", json={"inference": stand_in}).status_code == 200
    login(page, device)
    page.goto(device.url + "/inference")
    server = policy_server(policy_port, _status([f"{j}.pos" for j in JOINTS], ["front"], 6))
    page.click("#test-connection")
    page.wait_for_selector("#probe-result.ok")
    assert "Connected" in page.inner_text("#probe-message")
    assert "spinal/so101-demo" in page.inner_text("#probe-caps")
    assert server.opened == ["open", "close"]
    snap(page, "05-connection-ok")
    server.close()
    policy_server(policy_port, _status([f"{j}.pos" for j in JOINTS] + ["extra.pos"], ["wrist"], 7))
    page.click("#test-connection")
    page.wait_for_selector("#probe-result.bad")
    mismatch = page.inner_text("#probe-mismatch")
    assert "7 values" in mismatch and "6 joints" in mismatch
    assert "wrist" in mismatch
    snap(page, "06-connection-mismatch")


def test_auth_and_csrf_are_enforced_for_the_browser(device, page, browser, login, snap):
    login(page, device)
    # The page's own script sends the CSRF token; a request without it is refused even with the session cookie.
    refused = page.evaluate("() => fetch('/api/hold', {method: 'POST'}).then((r) => r.status)")
    accepted = page.evaluate(
        "() => fetch('/api/hold', {method: 'POST', headers: {'X-CSRF-Token':"
        " document.querySelector('meta[name=csrf-token]').content}}).then((r) => r.status)"
    )
    assert (refused, accepted) == (403, 200)
    stranger = browser.new_context()
    try:
        other = stranger.new_page()
        other.goto(device.url + "/system")
        assert other.url.endswith("/login")
        assert other.evaluate("() => fetch('/api/status').then((r) => r.status)") == 401
    finally:
        stranger.close()

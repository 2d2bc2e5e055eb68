"""The setup page over real HTTP: setup code -> password -> login, sessions, CSRF on the device API,
rate limiting, live events, settings, TLS upload, calibration, jog and factory reset."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from spinal_edge.testing import wait_for

PASSWORD = "robot arm 2024!"


def _browser(served) -> httpx.Client:
    return httpx.Client(base_url=served.url, timeout=30.0, follow_redirects=False)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'<meta name="csrf-token" content="([^"]+)"', html
    )
    assert match
    return match.group(1)


def _set_up(served, browser: httpx.Client) -> str:
    """Complete first-boot setup; returns the logged-in session's CSRF token."""
    code = served.app.state.web.setup_code.read()
    page = browser.get("/setup")
    r = browser.post(
        "/setup",
        data={
            "csrf_token": _csrf(page.text),
            "setup_code": code.lower(),
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/status"
    return _csrf(browser.get("/status").text)


def test_first_visit_leads_to_setup_and_the_code_sets_the_password(served_device):
    with _browser(served_device) as browser:
        assert browser.get("/").headers["location"] == "/status"
        assert browser.get("/status").headers["location"] == "/setup"
        page = browser.get("/setup")
        assert page.status_code == 200 and "Setup code" in page.text
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert "secure" not in cookie  # plain HTTP: a Secure cookie would never come back
        token = _csrf(page.text)
        wrong = browser.post(
            "/setup",
            data={
                "csrf_token": token,
                "setup_code": "AAAA-BBBB-CCCC",
                "password": PASSWORD,
                "confirm": PASSWORD,
            },
        )
        assert wrong.status_code == 400 and "setup code is wrong" in wrong.text
        assert not served_device.app.state.web.account.is_set()
        token = _set_up(served_device, browser)
        status = browser.get("/status")
        assert status.status_code == 200 and "Mode" in status.text and token
        assert "default-src 'self'" in status.headers["content-security-policy"]
        # Once a password exists the setup code is useless.
        assert browser.get("/setup").headers["location"] == "/login"


def test_setup_form_without_its_csrf_token_is_refused(served_device):
    with _browser(served_device) as browser:
        browser.get("/setup")
        code = served_device.app.state.web.setup_code.read()
        r = browser.post(
            "/setup",
            data={"csrf_token": "forged", "setup_code": code, "password": PASSWORD, "confirm": PASSWORD},
        )
        assert r.status_code == 403
        assert not served_device.app.state.web.account.is_set()


def test_device_api_accepts_token_or_session_and_enforces_csrf_for_sessions(served_device):
    anonymous = served_device.anonymous
    assert anonymous.get("/api/status").status_code == 401
    assert anonymous.post("/api/hold").status_code == 401
    assert served_device.client.post("/api/hold").status_code == 200  # bearer: no CSRF needed
    with _browser(served_device) as browser:
        token = _set_up(served_device, browser)
        assert browser.get("/api/status").json()["mode"] == "idle"
        assert browser.post("/api/hold").status_code == 403
        assert browser.post("/api/hold", headers={"X-CSRF-Token": "nope"}).status_code == 403
        assert browser.post("/api/hold", headers={"X-CSRF-Token": token}).status_code == 200
        cross = browser.post("/api/hold", headers={"X-CSRF-Token": token, "Origin": "http://evil.example"})
        assert cross.status_code == 403
        logout = browser.post("/logout", data={"csrf_token": token})
        assert logout.status_code == 303
        assert browser.get("/api/status").status_code == 401
        assert browser.get("/status").headers["location"] == "/login"


def test_login_is_rate_limited_after_repeated_wrong_passwords(served_device):
    with _browser(served_device) as browser:
        _set_up(served_device, browser)
    with _browser(served_device) as browser:
        token = _csrf(browser.get("/login").text)
        codes = [
            browser.post("/login", data={"csrf_token": token, "password": f"wrong guess {i}"}).status_code
            for i in range(6)
        ]
        assert codes[:5] == [401] * 5 and codes[5] == 429
        blocked = browser.post("/login", data={"csrf_token": token, "password": PASSWORD})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert served_device.app.state.web.counters["login_failed"] == 5


def test_login_rotates_the_session_cookie(served_device):
    with _browser(served_device) as browser:
        _set_up(served_device, browser)
    with _browser(served_device) as browser:
        page = browser.get("/login")
        before = browser.cookies["spinal_session"]
        r = browser.post("/login", data={"csrf_token": _csrf(page.text), "password": PASSWORD})
        assert r.status_code == 303
        assert browser.cookies["spinal_session"] != before
        assert served_device.app.state.web.sessions.get(before) is None


def test_events_stream_live_status(served_device):
    with _browser(served_device) as browser:
        _set_up(served_device, browser)
        with browser.stream("GET", "/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = []
            for line in stream.iter_lines():
                lines.append(line)
                if line.startswith("data: {"):
                    break
                assert len(lines) < 20
        assert '"mode":"idle"' in lines[-1]
    assert served_device.anonymous.get("/events").status_code == 401


def test_bad_setting_is_refused_and_the_previous_one_stays(served_device):
    with _browser(served_device) as browser:
        token = _set_up(served_device, browser)
        headers = {"X-CSRF-Token": token}
        bad = browser.patch("/api/settings", json={"loop": {"rate_hz": 5000}}, headers=headers)
        assert bad.status_code == 422 and "rate_hz" in bad.text
        assert served_device.daemon.config.loop.rate_hz == 30.0
        good = browser.patch(
            "/api/settings", json={"inference": {"task": "stack the cubes"}}, headers=headers
        )
        assert good.status_code == 200
        assert served_device.daemon.config.inference.task == "stack the cubes"


def test_tls_upload_validates_and_points_settings_at_private_files(served_device, pem_factory):
    pems = pem_factory()
    client = served_device.client
    mismatch = client.post(
        "/api/inference/tls",
        json={"ca_pem": pems.ca.decode(), "cert_pem": pems.cert.decode(), "key_pem": pems.other_key.decode()},
    )
    assert mismatch.status_code == 422 and "does not belong" in mismatch.json()["detail"]
    assert "tls" not in (served_device.daemon.config.inference.model_extra or {})
    only_ca = client.post("/api/inference/tls", json={"ca_pem": pems.ca.decode()})
    assert only_ca.status_code == 422 and "all three" in only_ca.json()["detail"]
    ok = client.post(
        "/api/inference/tls",
        json={"ca_pem": pems.ca.decode(), "cert_pem": pems.cert.decode(), "key_pem": pems.key.decode()},
    )
    assert ok.status_code == 200, ok.text
    tls = served_device.daemon.config.inference.model_extra["tls"]
    key_path = Path(tls["connect_private_key"])
    assert key_path.read_bytes() == pems.key
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    assert Path(tls["root_ca_certificate"]).read_bytes() == pems.ca


def _seen(client: httpx.Client, index: int, bound: str, value: float) -> bool:
    """The wizard has seen joint `index` reach `value` as its `bound` ("low" or "high")."""
    joint = client.get("/api/robot/calibration").json()["joints"][index]
    return joint[bound] is not None and abs(joint[bound] - value) < 0.5


def test_calibration_wizard_records_each_joint_and_jog_stays_within_range(served_device):
    client, arm, daemon = served_device.client, served_device.daemon.arm, served_device.daemon
    names = daemon.arm.joint_names
    assert (
        client.post("/api/robot/jog", json={"joint": names[0], "delta": 5}).status_code == 409
    )  # uncalibrated
    view = client.post("/api/robot/calibration", json={"action": "start"}).json()
    assert view["active"] and view["current"] == names[0] and arm.torque is False
    early = client.post("/api/robot/calibration", json={"action": "record", "joint": names[0]})
    assert early.status_code == 409 and "did not move" in early.json()["detail"]
    arm.set_torque(True)  # stands in for a hand moving the joint: the simulated arm moves only under torque
    for index, name in enumerate(names):
        for target in (-40.0 - index, 60.0 + index):
            goal = [0.0] * len(names)
            goal[index] = target
            arm.send_targets(goal)
            bound = "high" if target > 0 else "low"
            wait_for(lambda i=index, b=bound, t=target: _seen(client, i, b, t), timeout=60)
        assert (
            client.post("/api/robot/calibration", json={"action": "record", "joint": name}).status_code == 200
        )
    saved = client.post("/api/robot/calibration", json={"action": "save"}).json()
    data = json.loads(daemon.config.calibration_path().read_text())
    assert saved["saved_to"] == str(daemon.config.calibration_path())
    assert data[names[2]]["range_min"] == -42 and data[names[2]]["range_max"] == 62
    assert data[names[0]]["id"] == 1
    arm.send_targets([0.0] * len(names))
    wait_for(lambda: abs(float(arm.latest_state().positions[0])) < 0.5, timeout=60)
    jog = client.post("/api/robot/jog", json={"joint": names[0], "delta": 500})
    assert jog.status_code == 200 and jog.json()["target"] == 60.0  # clamped to the calibrated max
    assert client.post("/api/robot/jog", json={"joint": "elbow", "delta": 1}).status_code == 404


def test_factory_reset_forgets_the_password_and_makes_a_new_setup_code(served_device):
    web = served_device.app.state.web
    with _browser(served_device) as browser:
        token = _set_up(served_device, browser)
        old_code = web.setup_code.read()
        refused = browser.post(
            "/api/system/factory-reset", json={"confirm": "yes"}, headers={"X-CSRF-Token": token}
        )
        assert refused.status_code == 422 and web.account.is_set()
        r = browser.post(
            "/api/system/factory-reset", json={"confirm": "factory reset"}, headers={"X-CSRF-Token": token}
        )
        assert r.status_code == 202
        assert not web.account.is_set()
        assert web.setup_code.read() != old_code
        assert web.system.requests == ["restart_daemon"]
        assert browser.get("/status").headers["location"] == "/setup"


def test_every_page_renders_for_a_logged_in_browser(served_device):
    with _browser(served_device) as browser:
        _set_up(served_device, browser)
        for page in ("status", "robot", "recording", "inference", "cameras", "network", "system", "account"):
            r = browser.get(f"/{page}")
            assert r.status_code == 200, page
            assert 'id="estop"' in r.text, page


@pytest.mark.parametrize("path", ["/api/network", "/api/system", "/api/robot/scan"])
def test_page_endpoints_need_auth(served_device, path):
    assert served_device.anonymous.get(path).status_code == 401
    assert served_device.client.get(path).status_code == 200

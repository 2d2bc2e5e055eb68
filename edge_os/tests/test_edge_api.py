"""The device API over real HTTP on 127.0.0.1: auth, modes, snapshots, settings, metrics, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import simplejpeg
from fastapi import HTTPException, Request
from spinal_edge.api.auth import Principal, load_or_create_token
from spinal_edge.cameras import CameraSettings, SyntheticCamera
from spinal_edge.daemon import EdgeDaemon
from spinal_edge.settings_store import SettingsStore
from spinal_edge.testing import KinematicArm, ServedDaemon, data_dir_config, wait_for


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedDaemon]:
    store = SettingsStore(data_dir_config(tmp_path, loop={"rate_hz": 50}, web={"enabled": False}))
    arm = KinematicArm(leader=True)
    camera = SyntheticCamera("front", CameraSettings(kind="synthetic", width=96, height=72, fps=20))
    camera.set_joint_source(lambda: None if arm.latest_state() is None else arm.latest_state().positions)
    daemon = EdgeDaemon(store, arm=arm, cameras={"front": camera})
    with ServedDaemon(daemon) as s:
        yield s


def test_health_needs_no_token_and_everything_else_does(served: ServedDaemon) -> None:
    health = served.anonymous.get("/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True and health.json()["loop_running"] is True
    for method, path in [
        ("GET", "/api/status"),
        ("POST", "/api/mode"),
        ("GET", "/metrics"),
        ("GET", "/api/cameras/front/snapshot"),
        ("PATCH", "/api/settings"),
    ]:
        response = served.anonymous.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    wrong = served.anonymous.get("/api/status", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    assert "Authorization: Bearer" in wrong.json()["detail"]


def test_status_reports_mode_loop_cameras_and_mcu(served: ServedDaemon) -> None:
    wait_for(lambda: served.client.get("/api/status").json()["loop"]["ticks"] > 10)
    wait_for(lambda: served.client.get("/api/status").json()["cameras"]["front"]["frames"] > 2)
    status = served.client.get("/api/status").json()
    assert status["mode"] == "idle"
    assert status["inference"] == {"engine": "none", "state": "off", "ready": False, "failed": False}
    assert status["loop"]["rate_hz"] == 50 and status["loop"]["period_us"]["p50"] > 0
    assert status["cameras"]["front"]["width"] == 96
    assert status["mcu"]["connected"] is True and len(status["mcu"]["positions"]) == 6
    assert status["recorder"] is None


def test_modes_switch_through_the_api_and_impossible_ones_are_refused(served: ServedDaemon) -> None:
    arm = served.daemon.arm
    assert served.client.post("/api/mode", json={"mode": "teleop"}).json() == {"mode": "teleop"}
    arm.set_leader(np.array([15.0, 10, -10, 5, 0, 30]))
    wait_for(lambda: np.allclose(arm.latest_state().positions, [15, 10, -10, 5, 0, 30], atol=0.5))
    refused = served.client.post("/api/mode", json={"mode": "policy"})
    assert refused.status_code == 409
    assert refused.json()["error"] == "ModeError" and "engine" in refused.json()["detail"]
    assert served.client.get("/api/mode").json() == {"mode": "teleop"}, "a refused change keeps the mode"
    assert served.client.post("/api/hold").json() == {"mode": "idle"}
    bad = served.client.post("/api/mode", json={"mode": "dance"})
    assert bad.status_code == 422


def test_estop_turns_torque_off_and_warns(served: ServedDaemon) -> None:
    assert served.client.post("/api/estop").json() == {"mode": "idle"}
    assert served.daemon.arm.torque is False
    warnings = served.client.get("/api/status").json()["warnings"]
    assert warnings[0]["code"] == "estop"
    assert served.client.post("/api/torque", json={"enabled": True}).status_code == 200
    assert served.daemon.arm.torque is True


def test_snapshot_is_the_cameras_latest_jpeg(served: ServedDaemon) -> None:
    wait_for(lambda: served.daemon.snapshot("front") is not None)
    response = served.client.get("/api/cameras/front/snapshot")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert simplejpeg.decode_jpeg(response.content).shape == (72, 96, 3)
    assert int(response.headers["x-frame-index"]) >= 0
    missing = served.client.get("/api/cameras/rear/snapshot")
    assert missing.status_code == 404 and "GET /api/cameras" in missing.json()["detail"]


def test_settings_change_applies_and_a_bad_one_is_refused_with_the_fix(served: ServedDaemon) -> None:
    ok = served.client.patch("/api/settings", json={"loop": {"rate_hz": 40}, "inference": {"task": "wave"}})
    assert ok.status_code == 200 and ok.json()["overlay"] == {
        "loop": {"rate_hz": 40},
        "inference": {"task": "wave"},
    }
    wait_for(lambda: served.daemon.loop.rate_hz == 40)
    assert served.client.get("/api/task").json() == {"task": "wave"}
    bad = served.client.patch("/api/settings", json={"loop": {"rate_hz": 0}})
    assert bad.status_code == 422
    assert bad.json()["error"] == "ConfigError" and "[loop] rate_hz = 0 is invalid" in bad.json()["detail"]
    assert served.client.get("/api/settings").json()["config"]["loop"]["rate_hz"] == 40
    assert served.client.delete("/api/settings").json()["config"]["loop"]["rate_hz"] == 50


def test_metrics_are_prometheus_text(served: ServedDaemon) -> None:
    wait_for(lambda: served.daemon.loop.stats.ticks > 5)
    served.anonymous.get("/api/status")  # one refused request, counted
    text = served.client.get("/metrics").text
    assert 'spinal_edge_mode{mode="idle"} 1.0' in text
    assert "spinal_edge_loop_ticks_total" in text and 'spinal_edge_camera_fps{camera="front"}' in text
    assert "spinal_edge_api_auth_refused_total 1.0" in text


def test_openapi_is_published_with_the_bearer_scheme(served: ServedDaemon) -> None:
    schema = served.anonymous.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path in (
        "/api/status",
        "/api/mode",
        "/api/episode/start",
        "/api/cameras/{name}/snapshot",
    ):
        assert path in schema["paths"]


def test_another_authenticator_joins_the_gate_and_must_pass_csrf(served: ServedDaemon) -> None:
    """What the setup page does: a cookie session next to the token, with CSRF on state changes."""

    class CookieSession:
        def authenticate(self, request: Request) -> Principal | None:
            if request.cookies.get("session") == "valid":
                return Principal(name="admin", method="session", csrf_exempt=False)
            return None

    def csrf(request: Request, principal: Principal) -> None:
        if request.headers.get("x-csrf-token") != "good":
            raise HTTPException(403, "missing or wrong CSRF token")

    gate = served.app.state.auth
    gate.add(CookieSession())
    with httpx.Client(base_url=served.url, cookies={"session": "valid"}, timeout=30) as browser:
        assert browser.get("/api/status").status_code == 200
        assert gate.csrf_check is None
        assert browser.post("/api/hold").status_code == 403, "no CSRF check registered: refuse"
        gate.csrf_check = csrf
        assert browser.post("/api/hold").status_code == 403
        assert browser.post("/api/hold", headers={"x-csrf-token": "good"}).status_code == 200
    assert served.client.post("/api/hold").status_code == 200, "bearer requests need no CSRF token"


def test_the_token_file_is_created_once_with_private_permissions(tmp_path: Path) -> None:
    path = tmp_path / "api-token"
    token = load_or_create_token(path)
    assert len(token) >= 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_token(path) == token


def test_an_empty_token_file_gets_a_new_private_token(tmp_path: Path) -> None:
    path = tmp_path / "api-token"
    path.write_text("")  # what a crash during an older first start could leave
    path.chmod(0o644)
    token = load_or_create_token(path)
    assert len(token) >= 32 and path.read_text() == token + "\n"
    assert path.stat().st_mode & 0o777 == 0o600

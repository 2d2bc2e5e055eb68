"""Camera changes over real HTTP: renaming (validated, unique, saved), resolution and fps applied live by restarting
just that camera through the settings store; a refused change leaves the camera and the settings as they were."""

from __future__ import annotations

import json
from typing import Any

import pytest
import simplejpeg
from spinal_edge.settings_store import OVERLAY_NAME, SettingsStore
from spinal_edge.testing import wait_for

pytestmark = pytest.mark.slow


def _snapshot_size(served: Any, name: str) -> tuple[int, int]:
    response = served.client.get(f"/api/cameras/{name}/snapshot")
    assert response.status_code == 200, response.text
    height, width, _, _ = simplejpeg.decode_jpeg_header(response.content)
    return width, height


def _frame_of_size(served: Any, name: str, size: tuple[int, int]) -> bool:
    response = served.client.get(f"/api/cameras/{name}/snapshot")
    if response.status_code != 200:
        return False
    height, width, _, _ = simplejpeg.decode_jpeg_header(response.content)
    return (width, height) == size


def test_resolution_and_fps_apply_live_by_restarting_only_that_camera(served_device) -> None:
    daemon = served_device.daemon
    wait_for(lambda: _frame_of_size(served_device, "front", (160, 120)))
    before = daemon.cameras["front"]
    response = served_device.client.put("/api/cameras/front", json={"width": 96, "height": 64, "fps": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["restarted"] and body["renamed_from"] is None
    assert (body["settings"]["width"], body["settings"]["height"], body["settings"]["fps"]) == (96, 64, 5)
    wait_for(lambda: _frame_of_size(served_device, "front", (96, 64)))
    camera = daemon.cameras["front"]
    assert camera is not before and not before.running and camera.running
    assert daemon.loop.cameras["front"] is camera  # the control loop reads the new camera
    assert camera.settings.fps == 5
    saved = json.loads((daemon.config.data_dir / OVERLAY_NAME).read_text())
    assert saved["cameras"]["front"] == {"width": 96, "height": 64, "fps": 5}
    codes = [w["code"] for w in served_device.client.get("/api/status").json()["warnings"]]
    assert "restart_required" not in codes


def test_an_out_of_range_value_is_refused_and_the_camera_keeps_running(served_device) -> None:
    daemon = served_device.daemon
    camera = daemon.cameras["front"]
    response = served_device.client.put("/api/cameras/front", json={"width": 5})
    assert response.status_code == 422
    assert "width" in response.json()["detail"] and "between 32 and 3840" in response.json()["detail"]
    assert daemon.cameras["front"] is camera and camera.running
    assert daemon.config.cameras["front"].width == 160
    assert not (daemon.config.data_dir / OVERLAY_NAME).exists()
    assert served_device.app.state.camera_changes_refused["invalid"] == 1


def test_renaming_a_camera_changes_its_feature_name_everywhere_and_survives_a_restart(served_device) -> None:
    daemon = served_device.daemon
    response = served_device.client.put(
        "/api/cameras/front", json={"name": "wrist", "width": 128, "height": 96}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["renamed_from"], body["feature"]) == (
        "wrist",
        "front",
        "observation.images.wrist",
    )
    assert list(daemon.config.cameras) == ["wrist"] and list(daemon.cameras) == ["wrist"]
    assert list(daemon.loop.cameras) == ["wrist"]
    wait_for(lambda: _frame_of_size(served_device, "wrist", (128, 96)))
    assert served_device.client.get("/api/cameras/front/snapshot").status_code == 404
    assert [c["name"] for c in served_device.client.get("/api/cameras").json()] == ["wrist"]
    assert list(served_device.client.get("/api/status").json()["cameras"]) == ["wrist"]
    # edge.toml still says [cameras.front]: the saved rename must hide it after a restart too.
    again = SettingsStore(_base_raw(daemon))
    again.load_overlay()
    assert again.overlay_error == ""
    assert list(again.config.cameras) == ["wrist"] and again.config.cameras["wrist"].width == 128
    assert again.config.cameras["wrist"].kind == "synthetic"


def test_an_episode_recorded_after_a_rename_names_the_new_camera(served_device) -> None:
    client = served_device.client
    assert client.put("/api/cameras/front", json={"name": "top"}).status_code == 200
    wait_for(lambda: _frame_of_size(served_device, "top", (160, 120)))
    episode = client.post("/api/episode/start", json={"task": "look from the top"}).json()
    wait_for(lambda: client.get("/api/episode").json()["episode"]["camera_frames"].get("top", 0) > 2)
    client.post("/api/episode/stop")
    detail = client.get(f"/api/episodes/{episode['episode_id']}").json()
    assert list(detail["metadata"]["cameras"]) == ["top"]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Front2", "lowercase"),
        ("2front", "lowercase letter"),
        ("a" * 33, "31"),
        ("../x", "lowercase"),
        ("", ""),
    ],
)
def test_an_unusable_camera_name_is_refused_with_the_rule(served_device, name: str, why: str) -> None:
    response = served_device.client.put("/api/cameras/front", json={"name": name})
    assert response.status_code == 422
    assert "camera name" in response.json()["detail"] and why in response.json()["detail"]
    assert list(served_device.daemon.config.cameras) == ["front"]


def test_a_name_taken_by_another_camera_is_refused(served_device) -> None:
    client = served_device.client
    settings = {"kind": "synthetic", "width": 64, "height": 48, "fps": 5}
    assert client.patch("/api/settings", json={"cameras": {"wrist": settings}}).status_code == 200
    wait_for(lambda: _frame_of_size(served_device, "wrist", (64, 48)))  # an added camera starts at once
    response = client.put("/api/cameras/front", json={"name": "wrist"})
    assert response.status_code == 409
    assert "exists already" in response.json()["detail"]
    assert sorted(served_device.daemon.cameras) == ["front", "wrist"]
    assert served_device.daemon.config.cameras["wrist"].width == 64


def test_camera_changes_wait_for_the_recording_to_stop_and_unknown_cameras_are_404(served_device) -> None:
    client = served_device.client
    assert client.put("/api/cameras/side", json={"fps": 5}).status_code == 404
    client.post("/api/episode/start", json={"task": "hold still"})
    try:
        response = client.put("/api/cameras/front", json={"fps": 5})
        assert response.status_code == 409 and "stop it" in response.json()["detail"]
    finally:
        client.post("/api/episode/discard")
    assert served_device.daemon.config.cameras["front"].fps == 10


def test_camera_changes_need_a_token_or_a_session(served_device) -> None:
    response = served_device.anonymous.put("/api/cameras/front", json={"fps": 5})
    assert response.status_code == 401
    assert served_device.daemon.config.cameras["front"].fps == 10


def _base_raw(daemon: Any) -> dict[str, Any]:
    return {
        "data_dir": str(daemon.config.data_dir),
        "http": {"host": "127.0.0.1", "port": 8080},
        "inference": {"engine": "none"},
        "cameras": {"front": {"kind": "synthetic", "width": 160, "height": 120, "fps": 10}},
        "web": {"power": "fake"},
        "network": {"backend": "fake"},
    }


def test_a_rename_reaches_the_policy_whose_next_handshake_checks_the_camera_names(tmp_path) -> None:
    testing = pytest.importorskip("spinal_server.testing", reason="spinal-server is not installed")
    from spinal_edge.assembly import build_daemon
    from spinal_edge.testing import KinematicArm, ServedDaemon, data_dir_config

    with testing.running_server() as server:  # the demo policy needs the camera "front"
        inference = {
            "engine": "remote",
            "endpoints": [server.endpoint],
            "model_id": server.manifest.service.model_id,
            "mode": "client",
        }
        raw = data_dir_config(
            tmp_path / "data",
            inference=inference,
            cameras={"front": {"kind": "synthetic", "width": 64, "height": 48, "fps": 10}},
            web={"enabled": False},
        )
        with ServedDaemon(build_daemon(SettingsStore(raw), arm=KinematicArm())) as served:
            client = served.client

            def inference_state() -> dict[str, Any]:
                return client.get("/api/status").json()["inference"]

            wait_for(lambda: inference_state()["ready"], timeout=30)
            first_engine = served.daemon.engine
            assert client.put("/api/cameras/front", json={"name": "side"}).status_code == 200
            failed = wait_for(lambda: (s := inference_state())["failed"] and s, timeout=30)
            assert "needs cameras ['front']" in failed["failure_reason"]
            assert "it has ['side']" in failed["failure_reason"]
            assert served.daemon.engine is not first_engine
            assert client.post("/api/mode", json={"mode": "policy"}).status_code == 409
            # Renaming it back rebuilds the engine once more; its handshake passes and the policy may drive.
            assert client.put("/api/cameras/side", json={"name": "front"}).status_code == 200
            wait_for(lambda: inference_state()["ready"], timeout=30)
            wait_for(lambda: served.daemon.snapshot("front") is not None)
            response = client.post("/api/mode", json={"mode": "policy"})
            assert response.status_code == 200, response.text
            assert served.daemon.loop.policy is served.daemon.policy
            refused = client.put("/api/cameras/front", json={"fps": 5})
            assert refused.status_code == 409 and "press Hold" in refused.json()["detail"]
            client.post("/api/hold")
            assert client.put("/api/cameras/front", json={"fps": 5}).status_code == 200

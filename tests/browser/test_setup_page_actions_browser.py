"""The setup page's buttons in Debian's Chromium against the real app and the simulated rig, each checked on the
device itself: torque on/off, jog within the limits, discard and delete an episode, download a whole episode, and
rename / resize a camera live."""

from __future__ import annotations

import hashlib
import json
import tarfile
from typing import Any

import pytest
from spinal_edge.testing import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
# The nominal SO-101 calibration the daemon starts with when none was saved: ids 1..6 over 1024..3072 ticks.
NOMINAL = {name: {"id": i + 1, "range_min": 1024, "range_max": 3072} for i, name in enumerate(JOINTS)}


def live_text(page: Any, key: str, text: str) -> None:
    page.wait_for_function(
        '([key, text]) => document.querySelector(`[data-live="${key}"]`).textContent === text',
        arg=[key, text],
    )


def accept_dialogs(page: Any) -> None:
    page.on("dialog", lambda dialog: dialog.accept())


def test_torque_off_and_on_buttons_switch_every_servo(device, page, rig, login, snap):
    login(page, device)
    page.goto(device.url + "/robot")
    page.click("button:text-is('Torque off')")
    wait_for(lambda: not any(rig.torques().values()), timeout=15)
    live_text(page, "mcu.torque_enabled", "off")
    snap(page, "actions-torque-off")
    page.click("button:text-is('Torque on')")
    wait_for(lambda: all(rig.torques().values()), timeout=15)
    live_text(page, "mcu.torque_enabled", "on")
    assert device.daemon.arm.latest_state().torque_enabled


def test_jog_moves_one_joint_and_stops_at_its_limit(device, page, rig, login, snap):
    daemon = device.daemon
    daemon.config.calibration_path().write_text(json.dumps(NOMINAL))
    login(page, device)
    page.goto(device.url + "/robot")
    page.click("button:text-is('Torque on')")
    wait_for(lambda: all(rig.torques().values()), timeout=15)
    before = float(daemon.arm.latest_state().positions[0])
    ticks_before = rig.true_positions()[1]
    page.click('button[data-body=\'{"joint":"shoulder_pan","delta":10}\']')
    page.wait_for_selector("#flash:has-text('done')")
    wait_for(lambda: float(daemon.arm.latest_state().positions[0]) > before + 8, timeout=15)
    assert rig.true_positions()[1] > ticks_before + 50  # the real (simulated) servo turned
    others = [float(v) for v in daemon.arm.latest_state().positions[1:]]
    # The largest step the API takes, sent by the page's own script with its CSRF token: clamped to the range.
    answer = page.evaluate(
        "() => fetch('/api/robot/jog', {method: 'POST', headers: {'Content-Type': 'application/json',"
        " 'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content},"
        " body: JSON.stringify({joint: 'shoulder_pan', delta: 500})}).then((r) => r.json())"
    )
    assert answer["target"] == 100.0 and answer["range"] == [-100.0, 100.0]
    wait_for(lambda: float(daemon.arm.latest_state().positions[0]) > 98.0, timeout=15)
    page.click('button[data-body=\'{"joint":"shoulder_pan","delta":10}\']')
    page.wait_for_selector("#flash:has-text('done')")
    # Another +10 at the limit: the next goals the firmware writes to the servo stay at the range's end.
    seen = len(rig.goal_history(1))
    wait_for(lambda: len(rig.goal_history(1)) > seen + 20, timeout=15)
    assert max(goal for _, goal in rig.goal_history(1)[seen:]) <= NOMINAL["shoulder_pan"]["range_max"]
    assert float(daemon.arm.latest_state().positions[0]) <= 100.5
    assert rig.true_positions()[1] <= NOMINAL["shoulder_pan"]["range_max"] + 3
    now = [float(v) for v in daemon.arm.latest_state().positions[1:]]
    assert max(abs(a - b) for a, b in zip(now, others, strict=True)) < 2.0  # only that joint moved
    page.wait_for_function(
        "() => Number(document.querySelector('[data-live=\"mcu.positions.0\"]').textContent) > 98"
    )
    snap(page, "actions-jog-limit")


def _record(page: Any, task: str) -> str:
    page.fill("#task", task)
    page.click("#rec-start")
    live_text(page, "recorder.state", "recording")
    episode = page.locator('[data-live="recorder.episode.episode_id"]')
    page.wait_for_function(
        "(node) => !['', '–'].includes(node.textContent.trim())", arg=episode.element_handle()
    )
    return page.inner_text('[data-live="recorder.episode.episode_id"]').strip()


def _record_finished(page: Any, device: Any, task: str) -> tuple[str, Any]:
    """Start, wait for a few recorded frames, stop: the episode id and its row in the list."""
    episode_id = _record(page, task)
    wait_for(lambda: (device.daemon.recorder.status()["episode"] or {}).get("frames", 0) > 5, timeout=15)
    page.click("#rec-stop")
    row = page.locator(f'#episodes tr[data-episode="{episode_id}"]')
    row.wait_for()
    return episode_id, row


def test_discard_drops_the_running_episode_from_the_device(device, page, login, snap):
    accept_dialogs(page)
    login(page, device)
    page.goto(device.url + "/recording")
    episode_id = _record(page, "this one is a mistake")
    episode_dir = device.daemon.config.episodes_dir() / episode_id
    assert episode_dir.is_dir()
    page.click("#rec-discard")
    live_text(page, "recorder.state", "idle")
    wait_for(lambda: not episode_dir.exists(), timeout=15)
    assert not device.daemon.recorder.recording
    listed = [e["id"] for e in device.client.get("/api/episodes").json()["episodes"]]
    assert episode_id not in listed
    assert page.locator(f'#episodes tr[data-episode="{episode_id}"]').count() == 0


def test_delete_removes_a_finished_episode_and_its_row(device, page, login, snap):
    accept_dialogs(page)
    login(page, device)
    page.goto(device.url + "/recording")
    episode_id, row = _record_finished(page, device, "record then delete")
    episode_dir = device.daemon.config.episodes_dir() / episode_id
    assert episode_dir.is_dir()
    row.locator("button[data-delete]").click()
    page.wait_for_selector("#flash:has-text('Episode deleted')")
    row.wait_for(state="detached")
    assert not episode_dir.exists()
    assert device.client.get(f"/api/episodes/{episode_id}").status_code == 404


def test_download_all_saves_the_whole_episode_with_checksums(device, page, login, snap, tmp_path):
    login(page, device)
    page.goto(device.url + "/recording")
    episode_id, row = _record_finished(page, device, "one click download")
    snap(page, "actions-recording-archive")
    with page.expect_download() as info:
        row.locator("a.archive").click()
    download = info.value
    assert download.suggested_filename == f"{episode_id}.tar"
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    with tarfile.open(target) as tar:
        sums_member = tar.extractfile(f"{episode_id}/SHA256SUMS")
        assert sums_member is not None
        sums = [line.split("  ", 1) for line in sums_member.read().decode().splitlines()]
        files = {m.name.split("/", 1)[1] for m in tar.getmembers()} - {"SHA256SUMS"}
        assert {name for _, name in sums} == files and "episode.json" in files
        for digest, name in sums:
            data = tar.extractfile(f"{episode_id}/{name}").read()  # type: ignore[union-attr]
            assert hashlib.sha256(data).hexdigest() == digest, name
    # The per-file links stay.
    assert row.locator("a:not(.archive)").count() == len(files)


def test_camera_resize_and_rename_apply_live_and_a_bad_name_is_refused(device, page, login, snap):
    daemon = device.daemon
    login(page, device)
    page.goto(device.url + "/cameras")
    assert "inference handshake checks" in page.inner_text("#camera-names-note")
    form = page.locator('form[data-camera="front"]')
    form.locator("input[name=width]").fill("96")
    form.locator("input[name=height]").fill("64")
    form.locator("button[type=submit]").click()
    page.wait_for_selector('form[data-camera="front"] .camera-result.notice')
    wait_for(lambda: daemon.cameras["front"].stats().width == 96, timeout=15)
    page.wait_for_function("() => document.querySelector('img[data-snapshot=\"front\"]').naturalWidth === 96")
    assert daemon.config.cameras["front"].height == 64

    form.locator("input[name=name]").fill("Front Cam")
    form.locator("button[type=submit]").click()
    page.wait_for_selector('form[data-camera="front"] .camera-result.error')
    assert "not usable" in form.locator(".camera-result").inner_text()
    assert list(daemon.config.cameras) == ["front"] and daemon.cameras["front"].running

    form.locator("input[name=name]").fill("wrist")
    form.locator("button[type=submit]").click()
    page.wait_for_selector('form[data-camera="wrist"]')  # the page reloads under the new name
    page.wait_for_selector("#flash:has-text('observation.images.wrist')")
    page.wait_for_function("() => document.querySelector('img[data-snapshot=\"wrist\"]').naturalWidth === 96")
    assert list(daemon.config.cameras) == ["wrist"] and list(daemon.loop.cameras) == ["wrist"]
    assert "observation.images.wrist" in page.inner_text('form[data-camera="wrist"] h2')
    snap(page, "actions-camera-renamed")

"""The setup page's buttons in Debian's Chromium against the real app and the simulated rig, each checked on the
device itself: torque on/off, jog within the limits, discard and delete an episode, download a whole episode, and
rename / resize a camera live."""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from collections.abc import Callable
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]
JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
# The nominal SO-101 calibration the daemon starts with when none was saved: ids 1..6 over 1024..3072 ticks.
NOMINAL = {name: {"id": i + 1, "range_min": 1024, "range_max": 3072} for i, name in enumerate(JOINTS)}


def until(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.05)


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
    until(lambda: not any(rig.torques().values()), what="every servo limp")
    live_text(page, "mcu.torque_enabled", "off")
    snap(page, "actions-torque-off")
    page.click("button:text-is('Torque on')")
    until(lambda: all(rig.torques().values()), what="every servo holding")
    live_text(page, "mcu.torque_enabled", "on")
    assert device.daemon.arm.latest_state().torque_enabled


def test_jog_moves_one_joint_and_stops_at_its_limit(device, page, rig, login, snap):
    daemon = device.daemon
    daemon.config.calibration_path().write_text(json.dumps(NOMINAL))
    login(page, device)
    page.goto(device.url + "/robot")
    page.click("button:text-is('Torque on')")
    until(lambda: all(rig.torques().values()), what="torque on")
    before = float(daemon.arm.latest_state().positions[0])
    ticks_before = rig.true_positions()[1]
    page.click('button[data-body=\'{"joint":"shoulder_pan","delta":10}\']')
    page.wait_for_selector("#flash:has-text('done')")
    until(lambda: float(daemon.arm.latest_state().positions[0]) > before + 8, what="shoulder_pan moved +10")
    assert rig.true_positions()[1] > ticks_before + 50  # the real (simulated) servo turned
    others = [float(v) for v in daemon.arm.latest_state().positions[1:]]
    # The largest step the API takes, sent by the page's own script with its CSRF token: clamped to the range.
    answer = page.evaluate(
        "() => fetch('/api/robot/jog', {method: 'POST', headers: {'Content-Type': 'application/json',"
        " 'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content},"
        " body: JSON.stringify({joint: 'shoulder_pan', delta: 500})}).then((r) => r.json())"
    )
    assert answer["target"] == 100.0 and answer["range"] == [-100.0, 100.0]
    until(
        lambda: float(daemon.arm.latest_state().positions[0]) > 98.0, what="shoulder_pan at its upper limit"
    )
    page.click('button[data-body=\'{"joint":"shoulder_pan","delta":10}\']')
    page.wait_for_selector("#flash:has-text('done')")
    time.sleep(0.5)  # give a wrong move time to show
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


def test_discard_drops_the_running_episode_from_the_device(device, page, login, snap):
    accept_dialogs(page)
    login(page, device)
    page.goto(device.url + "/recording")
    episode_id = _record(page, "this one is a mistake")
    episode_dir = device.daemon.config.episodes_dir() / episode_id
    assert episode_dir.is_dir()
    page.click("#rec-discard")
    live_text(page, "recorder.state", "idle")
    until(lambda: not episode_dir.exists(), what="the episode folder removed")
    assert not device.daemon.recorder.recording
    listed = [e["id"] for e in device.client.get("/api/episodes").json()["episodes"]]
    assert episode_id not in listed
    assert page.locator(f'#episodes tr[data-episode="{episode_id}"]').count() == 0


def test_delete_removes_a_finished_episode_and_its_row(device, page, login, snap):
    accept_dialogs(page)
    login(page, device)
    page.goto(device.url + "/recording")
    episode_id = _record(page, "record then delete")
    time.sleep(0.5)
    page.click("#rec-stop")
    row = page.locator(f'#episodes tr[data-episode="{episode_id}"]')
    row.wait_for()
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
    episode_id = _record(page, "one click download")
    time.sleep(1.0)
    page.click("#rec-stop")
    row = page.locator(f'#episodes tr[data-episode="{episode_id}"]')
    row.wait_for()
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
    until(lambda: daemon.cameras["front"].stats().width == 96, what="the camera restarted at 96x64")
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

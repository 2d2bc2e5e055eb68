"""`spinal record` as a person runs it, against the `make demo` cell (spinal-server --demo, the firmware in
MicroPython on the simulated rig, spinal-edge with a synthetic camera; all on 127.0.0.1) in policy mode:
the keys pressed for real in a tmux terminal with the screen checked, Ctrl-C, and the daemon killed
mid-episode and restarted. Every session ends in a dataset `spinal dataset validate` accepts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from spinal_edge.demo import DemoCell
from spinal_edge.testing import wait_for

pytestmark = pytest.mark.slow

STARTUP_S = 180.0
WAIT_S = 120.0
SPINAL = Path(sys.executable).parent / "spinal"


def _streaming(status: dict) -> bool:
    return status["inference"].get("state") == "streaming" and status["mode"] == "policy"


@pytest.fixture(scope="module")
def cell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoCell]:
    with DemoCell(tmp_path_factory.mktemp("record-cell")) as running:
        running.wait_status(_streaming, timeout=STARTUP_S)
        yield running


def _record_args(cell: DemoCell, out: Path, **options: object) -> list[str]:
    args = [
        str(SPINAL),
        "record",
        "--device",
        cell.url,
        "--token",
        cell.token,
        "--task",
        "follow the demo cycle",
        "--mode",
        "policy",
        "--out",
        str(out),
        "--repo-id",
        "demo/follow",
    ]
    for name, value in options.items():
        flag = f"--{name.replace('_', '-')}"
        args += [flag] if value is True else [flag, str(value)]
    return args


def _validate(dataset: Path) -> str:
    done = subprocess.run(
        [str(SPINAL), "dataset", "validate", str(dataset)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _let_it_record(cell: DemoCell) -> None:
    """A person ends an episode after something happened: wait until every stream has some frames."""

    def enough() -> bool:
        episode = cell.client.get("/api/episode").json().get("episode") or {}
        cameras = episode.get("camera_frames") or {}
        return episode.get("frames", 0) >= 20 and min(cameras.values(), default=0) >= 10

    wait_for(enough, timeout=WAIT_S)


def _recording_frames(cell: DemoCell) -> int:
    episode = cell.client.get("/api/episode").json().get("episode") or {}
    return int(episode.get("frames", 0))


class Plain:
    """`spinal record` without a terminal: its stdout (progress lines) and stderr in files."""

    def __init__(self, args: list[str], folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout_path = folder / "stdout.txt"
        self.stderr_path = folder / "stderr.txt"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_line(self, text: str) -> None:
        def seen() -> bool:
            if text in self.stdout:
                return True
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.stdout}\n{self.stderr}"
            return False

        wait_for(seen, timeout=WAIT_S, interval=0.1)

    def wait(self) -> int:
        return self.proc.wait(WAIT_S * 2)

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


@contextlib.contextmanager
def plain(args: list[str], folder: Path) -> Iterator[Plain]:
    run = Plain(args, folder)
    try:
        yield run
    finally:
        run.kill()


class Tmux:
    """A private tmux server (its own socket) with one window running a command; keys in, screen out."""

    def __init__(self, command: str, *, width: int = 120, height: int = 50) -> None:
        self.socket = f"spinal-record-{uuid.uuid4().hex[:8]}"
        self._tmux("new-session", "-d", "-s", "rec", "-x", str(width), "-y", str(height), command)
        self.pane_pid = int(self._tmux("display-message", "-p", "-t", "rec", "#{pane_pid}").strip())

    def _tmux(self, *args: str) -> str:
        # The window's size must come from tmux, not from COLUMNS/LINES a test runner may have exported.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env=env,
        )
        return done.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "rec", "-S", "-200")

    def press(self, key: str) -> None:
        self._tmux("send-keys", "-t", "rec", key)

    def wait_screen(self, predicate: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed {what}:\n{screen}")
            time.sleep(0.2)

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._tmux("kill-server")
        # The pane's shell and `spinal record` belong to the tmux server; make sure none outlives the test.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pane_pid, signal.SIGKILL)


def _panel(screen: str) -> str:
    """The live panel as it is now (the last one drawn)."""
    top = screen.rfind("╭")
    return screen[top:] if top >= 0 else screen


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (make setup installs it)")
def test_keys_in_a_real_terminal_end_early_rerecord_and_stop(cell: DemoCell, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    record = " ".join(
        shlex.quote(a) for a in _record_args(cell, out, episodes=4, episode_time=120, reset_time=120)
    )
    # After the session: the exit code, then the terminal's settings (they must be back to normal).
    tmux = Tmux(f"{record}; echo EXIT=$?; stty -a; sleep 600")
    try:
        panel = lambda s: _panel(s)  # noqa: E731
        tmux.wait_screen(
            lambda s: "RECORDING" in panel(s) and "Episode 1/4" in panel(s) and " frames, " in panel(s),
            "episode 1 recording",
        )
        screen = _panel(tmux.screen())
        for shown in ("policy · inference", " Hz", "front", " fps", "s left", "→ end episode", "Esc stop"):
            assert shown in screen, f"{shown!r} is not on the screen:\n{screen}"
        _let_it_record(cell)
        tmux.press("Right")
        tmux.wait_screen(lambda s: "RESET" in panel(s) and "(ended early)" in s, "the reset after episode 1")
        tmux.press("Right")
        tmux.wait_screen(
            lambda s: "RECORDING" in panel(s) and "Episode 2/4" in panel(s), "episode 2 recording"
        )
        tmux.press("Left")
        tmux.wait_screen(
            lambda s: "RESET" in panel(s) and "episode 2 discarded" in s and "re-recorded 1" in panel(s),
            "episode 2 discarded",
        )
        tmux.press("Right")
        tmux.wait_screen(
            lambda s: "RECORDING" in panel(s) and "Episode 2/4" in panel(s) and "re-recorded 1" in panel(s),
            "episode 2 recorded again",
        )
        _let_it_record(cell)
        tmux.press("Right")
        tmux.wait_screen(
            lambda s: "RESET" in panel(s) and "kept 2/4" in panel(s), "the reset after episode 2"
        )
        tmux.press("Right")
        tmux.wait_screen(
            lambda s: "RECORDING" in panel(s) and "Episode 3/4" in panel(s) and " frames, " in panel(s),
            "episode 3 recording",
        )
        _let_it_record(cell)
        tmux.press("Escape")
        tmux.wait_screen(lambda s: "Keep it? [k]eep / [d]iscard" in panel(s), "the keep-or-discard question")
        tmux.press("k")
        final = tmux.wait_screen(lambda s: "EXIT=" in s, "the end of the session")
    finally:
        tmux.close()

    assert "EXIT=0" in final, final
    assert "3 episode(s)" in final and f"dataset: {out}" in final
    assert "episode 3 kept" in final and "the device is idle and holding the arm" in final
    settings = final.split("EXIT=0", 1)[1]
    assert re.search(r"(?<![-\w])icanon\b", settings) and re.search(r"(?<![-\w])echo\b", settings), (
        "the terminal is back in line mode with echo"
    )
    assert "valid: 3 episodes" in _validate(out)
    journal = json.loads((tmp_path / "ds.recordings" / "session.json").read_text())
    kept = [e["episode_id"] for e in journal["entries"] if e["fate"] == "kept"]
    on_device = {e["id"] for e in cell.client.get("/api/episodes").json()["episodes"]}
    assert len(kept) == 3 and set(kept) <= on_device
    status = cell.status()
    assert status["mode"] == "idle" and status["recorder"]["episode"] is None


def test_ctrl_c_leaves_the_device_idle_and_the_finished_episodes_safe(cell: DemoCell, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    cell.wait_status(lambda s: s["recorder"]["episode"] is None, timeout=WAIT_S)
    with plain(_record_args(cell, out, episodes=3, episode_time=3, reset_time=0), tmp_path / "first") as run:
        run.wait_line("episode 2/3: recording")
        wait_for(lambda: _recording_frames(cell) > 10, timeout=WAIT_S)
        os.kill(run.proc.pid, signal.SIGINT)
        code = run.wait()
    assert code == 130, run.stdout + run.stderr
    assert "the device is idle and holding the arm" in run.stderr
    assert "1 finished episode(s) are safe on the device" in run.stderr
    status = cell.status()
    assert status["mode"] == "idle" and status["recorder"]["episode"] is None
    journal = json.loads((tmp_path / "ds.recordings" / "session.json").read_text())
    kept = [e for e in journal["entries"] if e["fate"] == "kept"]
    stopped = [e for e in journal["entries"] if e["fate"] == "interrupted"]
    assert len(kept) == 1 and len(stopped) == 1 and stopped[0]["note"] == "stopped by Ctrl-C"
    stored = cell.client.get(f"/api/episodes/{kept[0]['episode_id']}").json()
    assert stored["status"] == "complete" and stored["frames"] == kept[0]["frames"]
    assert not out.exists(), "nothing was pulled or converted after Ctrl-C"

    with plain(
        _record_args(cell, out, episodes=2, episode_time=2, reset_time=0, resume=True), tmp_path / "resumed"
    ) as resumed:
        resumed.wait_line("episode 2/2: recording")
        assert resumed.wait() == 0, resumed.stdout + resumed.stderr
    assert "valid: 2 episodes" in _validate(out)


def test_the_device_killed_mid_episode_and_restarted(cell: DemoCell, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    cell.wait_status(lambda s: s["recorder"]["episode"] is None, timeout=WAIT_S)
    args = _record_args(cell, out, episodes=3, episode_time=3, reset_time=0.5)
    with plain(args, tmp_path / "session") as run:
        run.wait_line("episode 2/3: recording")
        wait_for(lambda: _recording_frames(cell) > 20, timeout=WAIT_S)
        lost = cell.client.get("/api/episode").json()["episode"]["episode_id"]
        cell.kill_daemon()
        run.wait_line("the device stopped answering")
        cell.start_daemon(timeout=STARTUP_S)
        run.wait_line("the device answers again (it restarted)")
        code = run.wait()
    assert code == 0, run.stdout + run.stderr
    assert "episode 2: the device restarted during it; the device recovered it with" in run.stdout
    assert "episode 2/3: recording" in run.stdout.split("the device restarted during it", 1)[1], (
        "episode 2 is recorded again"
    )
    assert "left out:" in run.stdout and lost in run.stdout
    stored = cell.client.get(f"/api/episodes/{lost}").json()
    assert stored["status"] == "recovered", "the device recovered the torn episode at its restart"
    told = re.search(r"the device recovered it with (\d+) frames", run.stdout)
    assert told and int(told.group(1)) == stored["frames"], "the person is told what the device kept"
    journal = json.loads((tmp_path / "ds.recordings" / "session.json").read_text())
    fates = {e["episode_id"]: e["fate"] for e in journal["entries"]}
    assert fates[lost] == "interrupted" and list(fates.values()).count("kept") == 3
    assert "valid: 3 episodes" in _validate(out)
    assert not (tmp_path / "ds.recordings" / lost).exists(), "the interrupted episode is not pulled"

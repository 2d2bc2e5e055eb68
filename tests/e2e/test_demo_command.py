"""`make demo` as a person runs it: the URL, the token and a live status line; a bounded run with a recorded
episode; Ctrl-C stops everything, and no process of the cell outlives the demo.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class ProcessTree:
    """Every process descended from `root` while it runs (polled from /proc), with its command line."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            parents: dict[int, int] = {}
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
            family = {self.root} | set(self.seen)
            changed = True
            while changed:
                changed = False
                for pid, ppid in parents.items():
                    if ppid in family and pid not in family:
                        family.add(pid)
                        changed = True
            for pid in family - {self.root} - set(self.seen):
                cmdline = _cmdline(pid)
                if cmdline:
                    self.seen[pid] = cmdline

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def survivors(self) -> list[str]:
        alive = [(pid, cmd) for pid, cmd in self.seen.items() if _cmdline(pid) == cmd]
        return [f"{pid}: " + cmd.replace(b"\0", b" ").decode(errors="replace") for pid, cmd in alive]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _start_demo(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-u", "-m", "spinal_edge.demo", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until(
    proc: subprocess.Popen[str],
    pattern: str,
    lines: list[str],
    timeout: float = 240.0,
    raw: list[str] | None = None,
) -> None:
    """Collect output until `pattern` appears (on a terminal, status lines arrive as \\r-separated updates);
    `raw` gets the output exactly as it came."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = ""
    while time.monotonic() < deadline:
        chunk = proc.stdout.read(1)
        if not chunk:
            break
        if raw is not None:
            raw.append(chunk)
        buffer += chunk
        if chunk in "\r\n":
            lines.append(_ANSI.sub("", buffer).strip())
            buffer = ""
            if re.search(pattern, lines[-1]):
                return
    raise AssertionError(f"{pattern!r} not seen; output so far:\n" + "\n".join(lines[-40:]))


@contextlib.contextmanager
def _demo(*args: str) -> Iterator[tuple[subprocess.Popen[str], ProcessTree, list[str]]]:
    """The demo as a child, its process tree watched; killed (and the watch stopped) whatever happens."""
    proc = _start_demo(*args)
    tree = ProcessTree(proc.pid)
    try:
        yield proc, tree, []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        tree.stop()


def test_a_bounded_demo_prints_url_token_status_records_and_leaves_no_process(tmp_path: Path) -> None:
    raw: list[str] = []
    with _demo("--duration", "25", "--record", "6", "--workdir", str(tmp_path / "demo")) as (
        proc,
        tree,
        lines,
    ):
        _read_until(proc, r"^policy +\| inference streaming", lines, raw=raw)
        _read_until(proc, r"episode \S+ kept: \d+ frames", lines, raw=raw)
        url = re.search(r"device page: (\S+)", "\n".join(lines)).group(1)
        token = re.search(r"API token: +(\S+)", "\n".join(lines)).group(1)
        warnings = httpx.get(f"{url}/api/status", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        remaining, _ = proc.communicate(timeout=240)
    output = "\n".join(lines) + remaining
    assert proc.returncode == 0, output
    # Not a terminal (a pipe): plain status lines, no redraws, and few of them (every few seconds).
    assert "\x1b[" not in "".join(raw) + remaining and "\r" not in "".join(raw) + remaining
    status_lines = [line for line in output.splitlines() if re.match(r"^(policy|idle) +\|", line)]
    assert 2 <= len(status_lines) <= 25, status_lines
    # The demo's simulated arm comes with its calibration: no warning that one is missing.
    codes = [w["code"] for w in warnings.json()["warnings"]]
    assert "calibration_missing" not in codes, codes
    assert (tmp_path / "demo" / "data" / "calibration.json").is_file()
    assert re.search(r"episode \S+ kept: \d+ frames, \d+\.\d\d s; pull it with", output), output
    assert re.search(r"device page: http://127\.0\.0\.1:\d+", output)
    assert re.search(r"API token: +\S{20,}", output)
    assert "spinal demo: stopped." in output
    assert len(tree.seen) >= 3, f"the cell's processes were seen: {tree.seen}"
    assert tree.survivors() == []
    episodes = list((tmp_path / "demo" / "data" / "episodes").iterdir())
    assert len(episodes) == 1 and (episodes[0] / "episode.json").exists()


def test_ctrl_c_stops_the_whole_cell(tmp_path: Path) -> None:
    with _demo("--workdir", str(tmp_path / "demo")) as (proc, tree, lines):
        _read_until(proc, r"^policy +\|", lines)
        proc.send_signal(signal.SIGINT)
        remaining, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, "\n".join(lines) + remaining
    assert "spinal demo: stopped." in remaining
    assert tree.survivors() == []

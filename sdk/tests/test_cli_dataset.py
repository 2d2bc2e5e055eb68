"""The `spinal dataset` commands: JSON output for scripts and exit codes that say what happened."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from spinal.cli import app
from spinal.commands._cli import ExitCode
from spinal.recording import camera_files
from typer.testing import CliRunner

runner = CliRunner()


def test_convert_then_validate_from_the_command_line(raw_recordings, tmp_path):
    out = tmp_path / "ds"
    result = runner.invoke(
        app, ["dataset", "convert", str(raw_recordings), str(out), "--repo-id", "me/x", "--json"]
    )
    assert result.exit_code == ExitCode.OK, result.output
    report = json.loads(result.stdout)
    assert report["total_frames"] == 144 and [e["episode_index"] for e in report["episodes"]] == [0, 1, 2]
    result = runner.invoke(app, ["dataset", "validate", str(out), "--json"])
    assert result.exit_code == ExitCode.OK and json.loads(result.stdout)["ok"] is True


def test_convert_exits_partial_when_an_episode_is_skipped(recorder, tmp_path):
    raw = recorder(tmp_path / "raw", [("good", 20, "pick"), ("bad", 20, "pick")])
    mjpeg = raw / "bad" / camera_files("front")[0]
    mjpeg.write_bytes(mjpeg.read_bytes()[:100])
    result = runner.invoke(app, ["dataset", "convert", str(raw), str(tmp_path / "ds"), "--repo-id", "me/x"])
    assert result.exit_code == ExitCode.PARTIAL
    assert "skipped bad" in result.output and "1 of 2 episodes" in result.output


def test_convert_fails_cleanly_on_a_folder_without_recordings(tmp_path):
    result = runner.invoke(
        app, ["dataset", "convert", str(tmp_path / "nothing"), str(tmp_path / "ds"), "--repo-id", "a/b"]
    )
    assert result.exit_code == ExitCode.FAILED
    assert "is not a folder" in result.output
    assert not (tmp_path / "ds").exists()


def test_validate_exits_invalid_with_one_line_per_violation(converted, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(converted, copy)
    (copy / "meta/stats.json").unlink()
    result = runner.invoke(app, ["dataset", "validate", str(copy)])
    assert result.exit_code == ExitCode.INVALID
    assert "meta/stats.json: is missing" in result.output and "1 violation(s)" in result.output


def test_info_merge_stats_and_plot_commands(converted, tmp_path):
    result = runner.invoke(app, ["dataset", "info", str(converted), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["episodes"] == 3
    merged = tmp_path / "merged"
    result = runner.invoke(app, ["dataset", "merge", str(converted), str(converted), str(merged), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["episodes"] == 6
    result = runner.invoke(app, ["dataset", "stats", str(merged), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["index"]["max"] == [287]
    result = runner.invoke(app, ["dataset", "plot", str(merged), str(tmp_path / "png"), "-e", "5"])
    assert result.exit_code == 0 and (tmp_path / "png" / "episode_000005.png").is_file()
    result = runner.invoke(app, ["dataset", "merge", str(converted), str(merged)])
    assert result.exit_code == ExitCode.USAGE


def test_the_installed_spinal_command_runs(converted):
    spinal = Path(sys.executable).parent / "spinal"
    completed = subprocess.run(
        [str(spinal), "dataset", "info", str(converted), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["robot_type"] == "so101_follower"

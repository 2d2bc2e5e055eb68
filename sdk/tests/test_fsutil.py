"""`spinal.fsutil`: an atomic write leaves the old or the new file (never a torn one), durable, with the mode asked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from spinal import fsutil
from spinal.fsutil import write_bytes_atomic, write_json_atomic, write_text_atomic


def test_a_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "settings.json"
    target.write_text("old")
    write_json_atomic(target, {"rate_hz": 50, "task": "pick the cube"})
    assert json.loads(target.read_text()) == {"rate_hz": 50, "task": "pick the cube"}
    assert target.read_text().endswith("\n")
    write_text_atomic(target, "ünïcode\n")
    assert target.read_text(encoding="utf-8") == "ünïcode\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_mode_is_exact_whatever_the_umask_and_the_default_follows_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o000)
    try:
        write_bytes_atomic(tmp_path / "secret", b"s3cret", mode=0o600)
        write_bytes_atomic(tmp_path / "calibration.json", b"{}", mode=0o644)
        os.umask(0o027)
        write_bytes_atomic(tmp_path / "plain", b"x")
    finally:
        os.umask(previous)
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "calibration.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "plain").stat().st_mode & 0o777 == 0o640


def test_replacing_a_secret_keeps_it_private(tmp_path: Path) -> None:
    target = tmp_path / "api-token"
    target.write_text("old")
    target.chmod(0o644)
    write_text_atomic(target, "new", mode=0o600)
    assert target.stat().st_mode & 0o777 == 0o600 and target.read_text() == "new"


def test_make_parents_creates_the_folder_and_without_it_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "missing" / "file", b"x")
    write_bytes_atomic(tmp_path / "a" / "b" / "file", b"x", make_parents=True)
    assert (tmp_path / "a" / "b" / "file").read_bytes() == b"x"


def test_a_failed_write_keeps_the_old_content_and_removes_its_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "episode.json"
    write_json_atomic(target, {"status": "recording"})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"status": object()})  # not JSON: fails before anything is renamed
    with pytest.raises(TypeError):
        write_bytes_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert json.loads(target.read_text()) == {"status": "recording"}
    assert [p.name for p in tmp_path.iterdir()] == ["episode.json"]


def test_the_file_and_its_folder_are_fsynced_before_the_write_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(fsutil.os, "fsync", recording_fsync)
    write_bytes_atomic(tmp_path / "journal.json", b"{}")
    assert len(synced) == 2
    assert Path(synced[0]).parent == tmp_path and Path(synced[0]).name.endswith(".tmp"), "the data first"
    assert synced[1] == str(tmp_path), "then the folder, so the rename survives a power cut"


_WRITER = textwrap.dedent(
    """
    import sys
    from spinal.fsutil import write_json_atomic
    target = sys.argv[1]
    big = "x" * 400_000
    write_json_atomic(target, {"n": 0, "pad": big})
    print("ready", flush=True)
    i = 1
    while True:
        write_json_atomic(target, {"n": i, "pad": big})
        i += 1
    """
)


def test_a_writer_killed_at_any_moment_leaves_a_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_json_atomic(target, {"n": -1, "pad": ""})
    for attempt in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 0.05 + 0.03 * attempt  # a different point of the loop each time
            while time.monotonic() < deadline:
                json.loads(target.read_text())  # a reader meanwhile never sees a torn file either
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        payload = json.loads(target.read_text())
        assert payload["n"] >= 0 and (payload["pad"] == "x" * 400_000)

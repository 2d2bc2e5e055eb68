"""`spinal-edge run` as systemd runs it: READY=1 once HTTP listens, watchdog pings, STOPPING=1 and exit 0 on
SIGTERM; a bad config or a taken port ends it with the one-sentence error."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from spinal_edge.demo import free_port

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(
        f"""
data_dir = "{tmp_path / "data"}"
[http]
host = "127.0.0.1"
port = {port}
[robot]
mcu_port = "{tmp_path / "no-mcu-here"}"
[cameras.front]
kind = "synthetic"
width = 64
height = 48
fps = 10
"""
    )
    return path


def _run(config: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from spinal_edge.cli import main; main()", "run", "--config", str(config)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ready_after_listening_watchdog_while_ticking_stopping_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    notify_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(notify_path)
        sock.settimeout(120)
        proc = _run(_config(tmp_path, port), {"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "400000"})
        try:
            first = sock.recv(4096).decode()
            assert first.startswith("READY=1"), first
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
            assert health.status_code == 200, "READY=1 comes only once the API answers"
            assert health.json()["loop_running"] is True
            pings = [sock.recv(4096).decode() for _ in range(3)]
            assert pings == ["WATCHDOG=1"] * 3
            token = (tmp_path / "data" / "api-token").read_text().strip()
            assert (tmp_path / "data" / "api-token").stat().st_mode & 0o777 == 0o600
            status = httpx.get(
                f"http://127.0.0.1:{port}/api/status",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).json()
            assert status["mcu"]["connected"] is False, "no MCU: the daemon still serves its API and says so"
            loop = status["loop"]
            if loop["realtime_error"]:  # real-time is on by default where Linux allows it
                assert "LimitRTPRIO" in loop["realtime_error"] or "LimitMEMLOCK" in loop["realtime_error"]
            else:
                assert (loop["realtime_priority"], loop["daemon_realtime_priority"]) == (50, 1)
                assert loop["memory_locked"] is True
            proc.send_signal(signal.SIGTERM)
            messages = []
            while "STOPPING=1" not in messages:
                messages.append(sock.recv(4096).decode())
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    _out, err = proc.communicate()
    assert token not in err, "the token never reaches the log"
    ready = [json.loads(line) for line in err.splitlines() if '"msg":"ready"' in line]
    assert ready and ready[0]["frozen_objects"] > 10_000, "the start-up heap is out of the collector's reach"


def test_a_bad_config_exits_with_the_sentence(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text("[loop]\nrate_hz = 1000\n")
    proc = _run(path)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"{path}: [loop] rate_hz = 1000 is invalid" in err and "set it between 1 and 100" in err


def test_a_taken_port_exits_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        proc = _run(_config(tmp_path, taken.getsockname()[1]))
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "[http] port" in err and "choose a free port" in err

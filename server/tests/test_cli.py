"""The `spinal-server` command line: the demo over real Zenoh, SIGTERM drain, replay, check, manifest errors."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from spinal.protocol import ServiceKeys
from spinal_server.cli import app
from spinal_server.demo_policy import DEMO_MODEL_ID
from spinal_server.testing import PolicyClient, free_tcp_port, observation, server_subprocess, stop_process
from typer.testing import CliRunner

runner = CliRunner()


def test_demo_command_serves_status_and_chunks_then_drains_on_sigterm(tmp_path: Path) -> None:
    port, health = free_tcp_port(), free_tcp_port()
    log = (tmp_path / "demo.log").open("wb")
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spinal_server",
            "--demo",
            "--listen",
            f"tcp/127.0.0.1:{port}",
            "--health-port",
            str(health),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        keys = ServiceKeys.for_service(DEMO_MODEL_ID)
        with PolicyClient(f"tcp/127.0.0.1:{port}", keys, "sim-arm") as client:
            deadline = time.monotonic() + 60
            status = None
            while status is None and time.monotonic() < deadline and process.poll() is None:
                with contextlib.suppress(TimeoutError):
                    status = client.status(timeout=1.0)
            assert status is not None, (tmp_path / "demo.log").read_text()
            print(f"spinal-server --demo answered status after {time.monotonic() - started:.2f} s")
            assert status.model_repo == DEMO_MODEL_ID and status.batchable and status.supports_rtc
            assert client.open_session(rtc_enabled=True).accepted
            chunk = client.request(observation([0, 10, -10, 0, 0, 50]), timeout=30)
            assert chunk.chunk_robot.shape == (40, 6)
            process.send_signal(signal.SIGTERM)
            drain = client.receive(30)
            assert drain.event is not None and drain.event.kind == "drain"
        assert process.wait(30) == 0
    finally:
        stop_process(process)
        log.close()
    text = (tmp_path / "demo.log").read_text()
    assert '"outcome": "ok"' in text and "draining" in text


def test_server_subprocess_helper_runs_a_manifest(tiny_model: Path) -> None:
    with server_subprocess(tiny_model, health=True) as rs, rs.client() as client:
        assert client.open_session().accepted
        assert client.request(observation(np.zeros(6), cameras={"front": (48, 64)})).chunk_robot.shape == (
            10,
            6,
        )
        process = rs.process
    assert process is not None and process.returncode == 0  # SIGTERM drained it cleanly


def test_manifest_errors_exit_2_naming_the_field(tmp_path: Path) -> None:
    manifest = tmp_path / "server.yaml"
    manifest.write_text("model: {path: x.onnx}\nscheduler: {kind: fifo}\n")
    result = runner.invoke(app, ["serve", "--manifest", str(manifest)])
    assert result.exit_code == 2 and "field scheduler.kind" in result.output
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2 and "--manifest" in result.output


def test_check_loads_the_model_and_prints_the_service(tiny_model: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "server.yaml"
    manifest.write_text(f"model: {{path: {tiny_model}}}\nservice: {{model_id: lab/tiny}}\n")
    result = runner.invoke(app, ["check", "--manifest", str(manifest)])
    assert result.exit_code == 0, result.output
    assert "@lerobot/lab-tiny/main/default" in result.output and re.search(r"batchable +True", result.output)
    bad = runner.invoke(app, ["check", "--manifest", str(manifest), "--set", "model.revision=v9"])
    assert bad.exit_code == 2


def test_replay_command_reports_identical_and_changed_models(demo_model: Path, tmp_path: Path) -> None:
    from spinal_server.testing import running_server

    capture = tmp_path / "cap"
    with running_server(demo_model, overrides=[f"debug.capture_dir={capture}"]) as rs, rs.client() as client:
        client.open_session()
        for i in range(3):
            client.request(observation([i, 0, 0, 0, 0, 50]))
    ok = runner.invoke(app, ["replay", str(capture)])
    assert ok.exit_code == 0 and "3/3 requests replayed identically" in ok.output
    other = tmp_path / "other"
    from spinal_server.demo_policy import build_demo_policy

    changed = build_demo_policy(other, chunk_size=30)
    bad = runner.invoke(app, ["replay", str(capture), "--model", str(changed)])
    assert bad.exit_code == 1 and "captured with model" in bad.output


def test_write_demo_model_and_version() -> None:
    assert runner.invoke(app, ["version"]).output.strip() == "0.1.0"
    result = runner.invoke(app, [])
    assert result.exit_code == 0 and "--demo" in result.output

"""What the image ships for the daemon, checked against the daemon itself: edge.toml loads with spinal-edge's
own validation (also after a preseed rewrote it), and the unit's sandbox exposure stays low."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from spinal.image.preseed import Preseed, TlsFiles
from spinal_edge.config_file import load_config_file

REPO = Path(__file__).resolve().parents[2]
EDGE_TOML = REPO / "edge_os" / "config" / "edge.toml"
UNIT = REPO / "edge_os" / "systemd" / "spinal-edge.service"


def test_the_shipped_config_is_valid_for_the_daemon() -> None:
    config, _ = load_config_file(EDGE_TOML)
    assert config.http.port == 8080
    assert config.data_dir == Path("/var/lib/spinal")
    assert config.network.access_point.enabled
    assert config.web.power == "systemd"
    # The daemon cannot see the boot partition (InaccessiblePaths); spinal-setup-code.path copies the code there.
    assert config.web.setup_code_copies == ()


def test_the_unit_lets_the_control_loop_run_real_time_and_lock_its_memory() -> None:
    """What the daemon's real-time set-up needs (edge_os/README.md): an RT priority limit, unlimited locked
    memory, and no RestrictRealtime; it stays without capabilities."""
    unit = dict(
        line.split("=", 1)
        for line in UNIT.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert unit["LimitRTPRIO"] == "50"
    assert unit["LimitMEMLOCK"] == "infinity"
    assert unit["RestrictRealtime"] == "no"
    assert unit["CapabilityBoundingSet"] == "" and unit["NoNewPrivileges"] == "yes"


def test_a_preseeded_config_is_still_valid_for_the_daemon(tmp_path: Path, bootsetup: ModuleType) -> None:
    etc = tmp_path / "etc"
    (etc / "spinal").mkdir(parents=True)
    (etc / "spinal" / "edge.toml").write_text(EDGE_TOML.read_text())
    paths = bootsetup.DevicePaths(state_dir=tmp_path / "state", etc=etc, run=tmp_path / "run", owner=None)
    pem = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", "-", "-out", "-", "-days", "2", "-subj", "/CN=t"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    key = pem[pem.index("-----BEGIN PRIVATE KEY") : pem.index("-----END PRIVATE KEY-----") + 25]
    cert = pem[pem.index("-----BEGIN CERTIFICATE") :]

    bootsetup.apply_server_settings(
        paths, Preseed(servers=("tls/gpu.example.org:7447",), tls=TlsFiles(ca=cert, cert=cert, key=key))
    )

    config, _ = load_config_file(paths.config)
    assert config.server.endpoints == ["tls/gpu.example.org:7447"]
    assert Path(config.server.tls.key_file).read_text() == key
    assert config.inference_options()["tls"]["root_ca_certificate"] == str(paths.tls_dir / "ca.pem")


def test_the_daemon_unit_runs_the_daemons_run_command() -> None:
    exec_start = re.search(r"^ExecStart=(.*)$", UNIT.read_text(), re.M)
    assert exec_start and exec_start[1].split()[1:] == ["run", "--config", "/etc/spinal/edge.toml"]


def test_the_daemon_unit_sandbox_exposure_is_low() -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for spinal-edge.service: ([\d.]+)", done.stdout)
    assert found, done.stdout[-2000:] + done.stderr
    assert float(found[1]) <= 2.0

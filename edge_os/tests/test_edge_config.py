"""The config file: defaults, and one clear sentence (file, field, fix) for every kind of mistake."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from spinal_edge.config_file import load_config_file, validate_config
from spinal_edge.errors import ConfigError
from spinal_edge.settings import DEFAULT_DATA_DIR, EdgeConfig

GOOD = """
data_dir = "{data}"
device_name = "bench-arm"

[http]
port = 9090

[loop]
rate_hz = 50

[cameras.front]
kind = "synthetic"
width = 320
height = 240

[cameras.wrist]
kind = "uvc"
device = "/dev/video2"

[recording]
min_free_mb = 100
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def test_empty_config_gives_the_device_defaults() -> None:
    config = validate_config({}, source="edge.toml")
    assert config.data_dir == DEFAULT_DATA_DIR
    assert config.http.port == 8080
    assert config.loop.rate_hz == 30
    assert config.inference.engine == "auto" and config.engine_kind() == "none"
    assert config.cameras == {}


def test_a_full_config_loads_with_its_values(tmp_path: Path) -> None:
    config, raw = load_config_file(_write(tmp_path, GOOD.format(data=tmp_path)))
    assert isinstance(config, EdgeConfig)
    assert config.http.port == 9090
    assert config.loop.rate_hz == 50
    assert config.cameras["front"].kind == "synthetic"
    assert config.cameras["wrist"].device == "/dev/video2"
    assert config.token_path() == tmp_path / "api-token"
    assert raw["http"] == {"port": 9090}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[http]\nport = 70000\n", ["[http] port = 70000", "between 1 and 65535"]),
        ("[loop]\nrate_hz = 500\n", ["[loop] rate_hz = 500", "set it between 1 and 100"]),
        ("[cameras.front]\nfps = 0\n", ["[cameras.front] fps = 0", "set it between 1 and 120"]),
        ('[cameras.front]\nkind = "webcam"\n', ["[cameras.front] kind = 'webcam'", 'set it to "uvc"']),
        ('[cameras.Front-Cam]\nkind = "uvc"\n', ["[cameras]", "not a lowercase identifier"]),
        ("[htp]\nport = 1\n", ["[htp] is not a known setting", "known here: ", "http"]),
        ("[http]\nprot = 1\n", ["[http] prot is not a known setting", "port"]),
        ('[robot]\njoint_names = ["a", "a"]\n', ["[robot] joint_names", "appears twice"]),
        ('[inference]\nengine = "local"\n', ["[inference]", "set model_path"]),
        (
            "[recording]\nfsync_interval_s = 5\n",
            ["[recording] fsync_interval_s = 5", "at most the last second"],
        ),
        ('device_name = "my robot!"\n', ["device_name = 'my robot!'", "short name"]),
    ],
)
def test_a_bad_value_names_the_field_and_the_fix(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for part in expected:
        assert part in message
    assert message.count("\n") == 0


def test_broken_toml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "[http]\nport = = 3\n")
    with pytest.raises(ConfigError, match=r"not valid TOML .*line 2.*fix the syntax"):
        load_config_file(path)


def test_a_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; create it or pass --config"):
        load_config_file(tmp_path / "nope.toml")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from spinal_edge.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_check_accepts_a_good_file(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.format(data=tmp_path))
    result = _cli("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert (
        "OK" in result.stdout and "HTTP port 9090" in result.stdout and "front (synthetic)" in result.stdout
    )


def test_config_check_prints_the_one_sentence_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "[http]\nport = 0\n")
    result = _cli("config", "check", str(path))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "[http] port = 0 is invalid" in lines[0] and "free TCP port" in lines[0]


IMAGE_STYLE = """
data_dir = "/var/lib/spinal"

[http]
host = "0.0.0.0"
port = 8080

[server]
endpoints = ["tls/gpu.example.org:7447"]

[server.tls]
ca_file = "/var/lib/spinal/tls/ca.pem"
cert_file = "/var/lib/spinal/tls/cert.pem"
key_file = "/var/lib/spinal/tls/key.pem"
"""


def test_the_server_section_of_the_image_config_feeds_the_inference_client(tmp_path: Path) -> None:
    config, _raw = load_config_file(_write(tmp_path, IMAGE_STYLE))
    assert config.engine_kind() == "none", "no model chosen yet: no engine, the daemon still runs"
    chosen = validate_config(
        {**tomllib.loads(IMAGE_STYLE), "inference": {"model_id": "lerobot/act_so101", "task": "wave"}},
        source="edge.toml",
    )
    assert chosen.engine_kind() == "remote"
    options = chosen.inference_options()
    assert options["endpoints"] == ["tls/gpu.example.org:7447"]
    assert options["tls"]["root_ca_certificate"] == "/var/lib/spinal/tls/ca.pem"
    assert options["task"] == "wave" and options["model_id"] == "lerobot/act_so101"


def test_half_a_tls_setup_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[server\] tls: .*set all three or none"):
        load_config_file(_write(tmp_path, '[server.tls]\nca_file = "/x/ca.pem"\n'))


SHIPPED = Path(__file__).resolve().parents[1] / "config" / "edge.toml"


@pytest.mark.skipif(not SHIPPED.exists(), reason="edge_os/config/edge.toml comes from the image branch")
def test_the_config_the_image_ships_is_valid() -> None:
    config, _raw = load_config_file(SHIPPED)
    assert config.http.port == 8080 and config.data_dir == DEFAULT_DATA_DIR

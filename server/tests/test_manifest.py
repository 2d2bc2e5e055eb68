"""Manifest parsing: defaults, overrides, field-naming errors, real JSON5 extra Zenoh config."""

from __future__ import annotations

from pathlib import Path

import pytest
from spinal_server.errors import ManifestError
from spinal_server.manifest import load_manifest, parse_override
from spinal_server.zenoh_config import build_zenoh_config, zenoh_config_dict


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.yaml"
    path.write_text(text)
    return path


def test_minimal_manifest_takes_documented_defaults(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, "model: {path: policy.onnx}\n"))
    assert m.model.path == tmp_path / "policy.onnx"  # relative to the manifest file
    assert m.max_sessions == 5 and m.warmup_inferences == 2 and m.serving_mode == "auto"
    assert m.scheduler.kind == "round_robin"
    assert m.zenoh.mode == "router" and m.zenoh.listen == ["tcp/127.0.0.1:7447"]
    assert m.health.host == "127.0.0.1" and m.health.port == 9100
    assert m.service_keys().prefix == "@lerobot/policy/main/default"


def test_service_name_comes_from_default_task_and_revision(tmp_path: Path) -> None:
    m = load_manifest(
        write(tmp_path, "model: {path: m/act.onnx, revision: v2}\ndefault_task: fold the towel\n")
    )
    assert m.service_keys().prefix == "@lerobot/act/v2/fold-the-towel"
    m = load_manifest(None, ["model.path=/x/a.onnx", "service.model_id=lab/act", "service.task=t1"])
    assert m.service_keys().prefix == "@lerobot/lab-act/main/t1"


def test_every_field_can_be_overridden_with_dotted_sets(tmp_path: Path) -> None:
    path = write(tmp_path, "model: {path: policy.onnx}\nscheduler: {kind: round_robin}\n")
    m = load_manifest(
        path,
        [
            "scheduler.kind=batch",
            "scheduler.max_batch=16",
            "zenoh.listen=[tcp/127.0.0.1:9000, tcp/127.0.0.1:9001]",
            "pin_task=true",
            "debug.capture_max=3",
            "health.port=null",
        ],
    )
    assert m.scheduler.kind == "batch" and m.scheduler.max_batch == 16
    assert m.zenoh.listen == ["tcp/127.0.0.1:9000", "tcp/127.0.0.1:9001"]
    assert m.pin_task is True and m.debug.capture_max == 3 and m.health.port is None


@pytest.mark.parametrize(
    ("yaml_text", "overrides", "field"),
    [
        ("{}", [], "model"),
        ("model: {path: p.onnx}\nscheduler: {max_batch: 0}", [], "scheduler.max_batch"),
        ("model: {path: p.onnx}\nserving_mode: sometimes", [], "serving_mode"),
        ("model: {path: p.onnx, device: gpu7}", [], "model.device"),
        ("model: {path: p.onnx}\nmax_sessions: 0", [], "max_sessions"),
        ("model: {path: p.onnx}\nunknown_field: 1", [], "unknown_field"),
        ("model: {path: p.onnx}", ["zenoh.listen=[localhost:7447]"], "zenoh.listen"),
        ("model: {path: p.onnx}", ["zenoh.mode=client"], "zenoh"),
        ("model: {path: p.onnx}\nzenoh: {tls: {connect_certificate: a.pem}}", [], "zenoh.tls"),
        ("model: {path: p.onnx}\nservice: {root: lerobot}", [], "(top level)"),
    ],
)
def test_invalid_manifests_name_the_field(
    tmp_path: Path, yaml_text: str, overrides: list[str], field: str
) -> None:
    with pytest.raises(ManifestError) as err:
        load_manifest(write(tmp_path, yaml_text), overrides)
    assert f"field {field}" in str(err.value)
    assert "server.yaml" in str(err.value)


def test_unreadable_and_non_mapping_manifests_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot be read"):
        load_manifest(tmp_path / "missing.yaml")
    with pytest.raises(ManifestError, match="must be a YAML mapping"):
        load_manifest(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_manifest(write(tmp_path, "model: {path: [\n"))
    with pytest.raises(ManifestError, match="dotted.field=value"):
        parse_override("no-equals-sign")


def test_extra_zenoh_config_is_real_json5_merged_deeply(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
model: {path: p.onnx}
zenoh:
  lease_ms: 1500
  listen: [tcp/127.0.0.1:7450]
  extra_config: |
    {
      // comments, unquoted keys and trailing commas are JSON5, not JSON
      transport: { link: { tx: { keep_alive: 2, }, }, },
      queries_default_timeout: 2000,
    }
""",
    )
    m = load_manifest(path)
    config = zenoh_config_dict(m.zenoh)
    tx = config["transport"]["link"]["tx"]
    assert tx["lease"] == 1500 and tx["keep_alive"] == 2  # merged, not replaced
    # a micro-batch's burst of express chunks must queue, not drop (Zenoh's default queue holds 2)
    assert tx["queue"]["size"]["interactive_high"] == 16
    assert tx["queue"]["congestion_control"]["drop"]["wait_before_drop"] == 5000
    assert config["queries_default_timeout"] == 2000
    assert config["scouting"]["multicast"]["enabled"] is False
    build_zenoh_config(m.zenoh)  # Zenoh itself accepts it
    # the same from the command line, one line of JSON5
    m = load_manifest(
        path, ["zenoh.extra_config='{routing: {router: {peers_failover_brokering: false,},},}'"]
    )
    assert zenoh_config_dict(m.zenoh)["routing"] == {"router": {"peers_failover_brokering": False}}


def test_extra_zenoh_config_errors_are_manifest_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "model: {path: p.onnx}\n")
    with pytest.raises(ManifestError, match="field zenoh.extra_config"):
        load_manifest(path, ["zenoh.extra_config='{transport: '"])
    m = load_manifest(path, ["zenoh.extra_config='{not_a_zenoh_key: 1}'"])
    with pytest.raises(ManifestError, match="refused by Zenoh"):
        build_zenoh_config(m.zenoh)

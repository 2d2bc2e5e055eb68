"""Model backends: ONNX Runtime (batch-axis detection, provider choice, input checks), torch programs, LeRobot."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from spinal.protocol import Observation
from spinal_server.backends import detect_format
from spinal_server.backends.lerobot_backend import classify, spec_from_checkpoint
from spinal_server.backends.onnx_backend import choose_providers
from spinal_server.demo_policy import SO101_ACTIONS
from spinal_server.errors import BackendUnavailable, ModelLoadError, SidecarError
from spinal_server.generated_models import build_tiny_policy, tiny_spec
from spinal_server.runtime import PolicyRuntime
from spinal_server.sidecar import write_sidecar


def obs(state: float = 1.0, pixel: int = 0) -> Observation:
    return Observation(
        state=np.full(6, state, np.float32), images={"front": np.full((48, 64, 3), pixel, np.uint8)}
    )


def test_onnx_dynamic_batch_axis_is_detected(tiny_model: Path, tmp_path: Path) -> None:
    dynamic = PolicyRuntime.from_model_path(tiny_model)
    fixed = PolicyRuntime.from_model_path(build_tiny_policy(tmp_path, fixed_batch=True))
    assert dynamic.capabilities.batchable and not fixed.capabilities.batchable
    assert dynamic.capabilities.device == "cpu" and "CPUExecutionProvider" in dynamic.capabilities.detail


def test_gpu_providers_are_used_only_when_present() -> None:
    assert choose_providers("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CPUExecutionProvider"
    ]
    assert choose_providers("cuda", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert choose_providers(
        "auto", ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    ) == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]


def test_cuda_device_falls_back_to_cpu_here(tiny_model: Path) -> None:
    runtime = PolicyRuntime.from_model_path(tiny_model, device="cuda")
    assert runtime.capabilities.device == "cpu"
    assert runtime.infer(obs())[0].shape == (10, 6)


def test_sidecar_that_feeds_other_inputs_than_the_model_is_refused(tmp_path: Path) -> None:
    path = build_tiny_policy(tmp_path)
    write_sidecar(tiny_spec(cameras={"wrist": (48, 64)}), tmp_path)
    with pytest.raises(ModelLoadError, match="does not feed"):
        PolicyRuntime.from_model_path(path)


def test_sidecar_promising_another_chunk_shape_is_refused(tmp_path: Path) -> None:
    path = build_tiny_policy(tmp_path, chunk_size=10)
    write_sidecar(tiny_spec(chunk_size=12), tmp_path)
    with pytest.raises(ModelLoadError, match="does not match policy.json"):
        PolicyRuntime.from_model_path(path)


def test_format_detection_and_its_errors(tmp_path: Path) -> None:
    assert detect_format(Path("a.onnx")) == "onnx" and detect_format(Path("a.pt2")) == "torch_export"
    assert detect_format(Path("a.pt")) == "torchscript"
    with pytest.raises(ModelLoadError, match="set model.format"):
        detect_format(Path("model.bin"))
    with pytest.raises(ModelLoadError, match="no config.json"):
        detect_format(tmp_path)
    with pytest.raises(ModelLoadError, match="does not exist"):
        PolicyRuntime.from_model_path(tmp_path / "nope.onnx")


# ---- torch ------------------------------------------------------------------------------------------


def _torch_module(torch, chunk: int = 10, batch_friendly: bool = True):
    class Linear(torch.nn.Module):
        """The same function as the tiny ONNX policy, written in torch."""

        def __init__(self) -> None:
            super().__init__()
            self.chunk = chunk
            self.batch_friendly = batch_friendly

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            state = batch["observation.state"]
            image = batch["observation.images.front"].mean(dim=(1, 2, 3))
            steps = torch.arange(self.chunk, dtype=torch.float32) * 0.01
            out = state[:, None, :] + steps[None, :, None] + 0.1 * image[:, None, None]
            if not self.batch_friendly:
                out = out[:1]  # silently wrong for batches: the probe must notice
            return out

    return Linear().eval()


def _script(torch, module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # TorchScript still loads; export is the successor
        torch.jit.save(torch.jit.script(module), str(path))


@pytest.mark.parametrize("fmt", ["torchscript", "torch_export"])
def test_torch_programs_match_the_onnx_policy(fmt: str, tiny_model: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is an optional backend")
    module = _torch_module(torch)
    if fmt == "torchscript":
        path = tmp_path / "policy.pt"
        _script(torch, module, path)
    else:
        path = tmp_path / "policy.pt2"
        example = {
            "observation.state": torch.zeros(2, 6),
            "observation.images.front": torch.zeros(2, 3, 48, 64),
        }
        batch = torch.export.Dim("batch", min=1, max=64)
        shapes = {"batch": {"observation.state": {0: batch}, "observation.images.front": {0: batch}}}
        torch.export.save(torch.export.export(module, (example,), dynamic_shapes=shapes), str(path))
    write_sidecar(tiny_spec(), tmp_path)
    runtime = PolicyRuntime.from_model_path(path)
    reference = PolicyRuntime.from_model_path(tiny_model)
    assert runtime.backend.name == fmt and runtime.capabilities.batchable
    for o in (obs(1.0, 0), obs(-3.0, 200)):
        np.testing.assert_allclose(runtime.infer(o)[1], reference.infer(o)[1], rtol=1e-5, atol=1e-5)
    prepared = [runtime.prepare(o, runtime.new_session_state()) for o in (obs(1.0), obs(2.0), obs(3.0))]
    assert runtime.forward(prepared).shape == (3, 10, 6)


def test_torch_model_that_cannot_batch_is_served_one_at_a_time(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is an optional backend")
    path = tmp_path / "policy.pt"
    _script(torch, _torch_module(torch, batch_friendly=False), path)
    write_sidecar(tiny_spec(), tmp_path)
    assert not PolicyRuntime.from_model_path(path).capabilities.batchable


def test_torch_dtype_names_are_checked(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is an optional backend")
    path = tmp_path / "policy.pt"
    _script(torch, _torch_module(torch), path)
    write_sidecar(tiny_spec(), tmp_path)
    with pytest.raises(ModelLoadError, match="not a torch dtype"):
        PolicyRuntime.from_model_path(path, dtype="float99")
    half = PolicyRuntime.from_model_path(path, dtype="float64")
    assert half.infer(obs())[1].dtype == np.float32


def test_a_corrupt_torch_file_is_a_load_error(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is an optional backend")
    (tmp_path / "policy.pt").write_bytes(b"definitely not a torchscript archive")
    write_sidecar(tiny_spec(), tmp_path)
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        PolicyRuntime.from_model_path(tmp_path / "policy.pt")


# ---- LeRobot ------------------------------------------------------------------------------------------


def _lerobot_checkpoint(directory: Path, policy_type: str = "act", with_sidecar: bool = True) -> Path:
    config = {
        "type": policy_type,
        "chunk_size": 50,
        "n_action_steps": 50,
        "input_features": {
            "observation.state": {"type": "STATE", "shape": [6]},
            "observation.images.front": {"type": "VISUAL", "shape": [3, 96, 128]},
        },
        "output_features": {"action": {"type": "ACTION", "shape": [6]}},
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    if with_sidecar:
        (directory / "policy.json").write_text(json.dumps({"action_names": SO101_ACTIONS, "fps": 30}))
    return directory


def test_lerobot_checkpoint_spec_comes_from_config_json(tmp_path: Path) -> None:
    spec = spec_from_checkpoint(_lerobot_checkpoint(tmp_path / "act"))
    assert spec.policy_type == "act" and spec.state_dim == 6 and spec.chunk_size == 50
    assert spec.cameras["front"].height == 96 and spec.cameras["front"].width == 128
    assert spec.chunk_stateless and not spec.rtc.supported
    pi0 = spec_from_checkpoint(_lerobot_checkpoint(tmp_path / "pi0", "pi0"))
    assert pi0.rtc.supported and pi0.names.prefix == "prev_chunk_left_over"
    assert not spec_from_checkpoint(_lerobot_checkpoint(tmp_path / "diff", "diffusion")).chunk_stateless
    with pytest.raises(SidecarError, match="needs a policy.json with 'action_names'"):
        spec_from_checkpoint(_lerobot_checkpoint(tmp_path / "bare", with_sidecar=False))


def test_lerobot_policy_families_are_classified_for_serving() -> None:
    assert classify("act") == "shared" and classify("pi05") == "shared"
    assert classify("diffusion") == "exclusive" and classify("smolvla") == "exclusive"
    assert classify("sac") == "refused"


def test_lerobot_checkpoint_without_lerobot_installed_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the LeRobot backend needs torch first")
    try:
        import lerobot  # noqa: F401

        pytest.skip("lerobot is installed here; this pins the message shown when it is not")
    except ImportError:
        pass
    with pytest.raises(BackendUnavailable, match="needs the lerobot package"):
        PolicyRuntime.from_model_path(_lerobot_checkpoint(tmp_path / "act"))

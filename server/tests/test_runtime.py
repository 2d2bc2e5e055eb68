"""PolicyRuntime: the demo policy's behaviour, batching bit for bit, RTC, revision pinning, fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from spinal.protocol import Observation
from spinal_server.demo_policy import SO101_ACTIONS
from spinal_server.errors import InferenceError, ModelLoadError
from spinal_server.generated_models import build_mlp_policy, build_tiny_policy
from spinal_server.runtime import PolicyRuntime, example_observation


def frame(left_bright: bool) -> np.ndarray:
    img = np.full((480, 640, 3), 30, np.uint8)
    if left_bright:
        img[:, :200] = 230
    else:
        img[:, 440:] = 230
    return img


@pytest.fixture(scope="module")
def demo(demo_model: Path) -> PolicyRuntime:
    return PolicyRuntime.from_model_path(demo_model)


def test_demo_policy_speaks_so101(demo: PolicyRuntime) -> None:
    spec = demo.spec
    assert spec.action_names == SO101_ACTIONS and spec.state_dim == 6 and spec.fps == 30
    assert list(spec.cameras) == ["front"] and 30 <= spec.chunk_size <= 50
    assert demo.supports_rtc and demo.capabilities.batchable


def test_demo_chunk_starts_at_the_state_and_stays_in_joint_limits(demo: PolicyRuntime) -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        state = np.concatenate([rng.uniform(-90, 90, 5), rng.uniform(5, 95, 1)]).astype(np.float32)
        _, robot = demo.infer(
            Observation(state=state, images={"front": rng.integers(0, 255, (480, 640, 3), np.uint8)})
        )
        assert np.all(robot[:, :5] >= -90.01) and np.all(robot[:, :5] <= 90.01)
        assert np.all(robot[:, 5] >= 4.99) and np.all(robot[:, 5] <= 95.01)
        assert np.max(np.abs(robot[0] - state)) < 8  # the first step continues from where the arm is


def test_demo_actions_depend_visibly_on_state_and_on_image(demo: PolicyRuntime) -> None:
    state = np.array([10, -20, 30, 0, 5, 40], np.float32)
    _, left = demo.infer(Observation(state=state, images={"front": frame(True)}))
    _, right = demo.infer(Observation(state=state, images={"front": frame(False)}))
    _, moved = demo.infer(Observation(state=state - 30, images={"front": frame(True)}))
    assert np.max(np.abs(left - right)) > 10  # degrees: the picture steers the arm
    assert np.max(np.abs(left - moved)) > 10  # and so does where the arm is


def test_demo_keeps_the_arm_moving_when_fed_its_own_actions(demo: PolicyRuntime) -> None:
    state = np.array([0, 0, 0, 0, 0, 50], np.float32)
    visited = []
    for _ in range(30):
        _, robot = demo.infer(Observation(state=state, images={"front": frame(True)}))
        state = robot[14]
        visited.append(state.copy())
    spread = np.ptp(np.array(visited[10:]), axis=0)
    assert np.all(spread[:5] > 10), spread  # every joint keeps sweeping: a limit cycle, not a fixed point


def test_rtc_prefix_is_executed_for_the_delay_steps(demo: PolicyRuntime) -> None:
    prefix = np.full((10, 6), 0.5, np.float32)
    base = Observation(state=np.zeros(6, np.float32), images={"front": frame(True)})
    rtc = Observation(state=base.state, images=base.images, inference_delay_steps=4, prefix_model=prefix)
    model, _ = demo.infer(rtc)
    plain, _ = demo.infer(base)
    np.testing.assert_array_equal(model[:4], prefix[:4])
    np.testing.assert_array_equal(model[4:], plain[4:])
    off, _ = demo.infer(rtc, rtc=False)  # a session whose RTC was downgraded ignores the prefix
    np.testing.assert_array_equal(off, plain)


@pytest.mark.parametrize("builder", ["demo", "mlp", "tiny"])
def test_batched_chunks_equal_per_session_chunks_bit_for_bit(
    builder: str, demo_model: Path, tmp_path: Path
) -> None:
    if builder == "demo":
        runtime = PolicyRuntime.from_model_path(demo_model)
    elif builder == "mlp":
        runtime = PolicyRuntime.from_model_path(build_mlp_policy(tmp_path, hidden=256))
    else:
        runtime = PolicyRuntime.from_model_path(build_tiny_policy(tmp_path, relative=True, rtc=True))
    rng = np.random.default_rng(7)
    spec = runtime.spec
    observations = [
        Observation(
            state=rng.uniform(-50, 50, spec.state_dim).astype(np.float32),
            images={c: rng.integers(0, 255, (120, 160, 3), np.uint8) for c in spec.cameras},
            inference_delay_steps=int(rng.integers(0, 4)),
            prefix_model=rng.normal(size=(3, spec.action_dim)).astype(np.float32),
        )
        for _ in range(9)
    ]
    singles = [runtime.infer(o, runtime.new_session_state()) for o in observations]
    states = [runtime.new_session_state() for _ in observations]
    prepared = [runtime.prepare(o, s, rtc=True) for o, s in zip(observations, states, strict=True)]
    batched = runtime.forward(prepared)
    for i, (model, robot) in enumerate(singles):
        assert batched[i].tobytes() == model.tobytes()
        assert runtime.finish(batched[i], states[i]).tobytes() == robot.tobytes()


def test_forward_refuses_a_batch_the_model_cannot_take(tmp_path: Path) -> None:
    runtime = PolicyRuntime.from_model_path(build_tiny_policy(tmp_path, fixed_batch=True))
    prepared = [
        runtime.prepare(example_observation(runtime.spec), runtime.new_session_state()) for _ in range(2)
    ]
    with pytest.raises(InferenceError, match="one observation per forward"):
        runtime.forward(prepared)


def test_model_revision_is_honoured(tmp_path: Path) -> None:
    path = build_tiny_policy(tmp_path, revision="v2")
    assert PolicyRuntime.from_model_path(path, revision="v2").spec.revision == "v2"
    PolicyRuntime.from_model_path(path, revision="main")  # "main" = whatever is at the path
    with pytest.raises(ModelLoadError, match="model.revision 'v3' was asked for"):
        PolicyRuntime.from_model_path(path, revision="v3")
    with pytest.raises(ModelLoadError, match="records no revision"):
        PolicyRuntime.from_model_path(build_tiny_policy(tmp_path / "unnamed"), revision="v2")
    fingerprint = PolicyRuntime.from_model_path(path).fingerprint
    PolicyRuntime.from_model_path(path, revision=fingerprint[:12])
    with pytest.raises(ModelLoadError, match="does not match"):
        PolicyRuntime.from_model_path(path, revision="sha256:0000")


def test_fingerprint_changes_with_weights_or_sidecar(tmp_path: Path) -> None:
    a = PolicyRuntime.from_model_path(build_mlp_policy(tmp_path / "a", hidden=32, seed=0)).fingerprint
    b = PolicyRuntime.from_model_path(build_mlp_policy(tmp_path / "b", hidden=32, seed=1)).fingerprint
    again = PolicyRuntime.from_model_path(build_mlp_policy(tmp_path / "c", hidden=32, seed=0)).fingerprint
    assert a != b and a == again
    sidecar = json.loads((tmp_path / "c" / "policy.json").read_text())
    sidecar["fps"] = 15
    (tmp_path / "c" / "policy.json").write_text(json.dumps(sidecar))
    assert PolicyRuntime.from_model_path(tmp_path / "c" / "bench_mlp.onnx").fingerprint != a


def test_warmup_runs_plain_and_rtc_forwards(demo: PolicyRuntime) -> None:
    assert demo.warmup(3) > 0
    assert demo.warmup(0) == 0.0

"""LocalEngine: the server's model runtime in-process, behind the same control-loop interface."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

demo_policy = pytest.importorskip(
    "spinal_server.demo_policy", reason="needs spinal-server (the `local` extra)"
)

from spinal_edge.inference import (  # noqa: E402
    ClientState,
    ContractViolation,
    InferenceConfig,
    InferenceConfigError,
    LocalBackendUnavailable,
    RobotSpec,
)
from spinal_edge.inference.local import LocalEngine  # noqa: E402

ROBOT = RobotSpec(cameras=("front",), fps=30.0)


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    return demo_policy.build_demo_policy(tmp_path_factory.mktemp("demo"))


def config(**kw) -> InferenceConfig:
    return InferenceConfig(model_id="demo", max_action_age_s=30.0, **kw)


def test_local_engine_streams_chunks_with_provenance(demo_model, engines, robot_loop_cls, waiter):
    e = LocalEngine(config(), ROBOT, model_path=demo_model)
    engines.append(e)
    e.start()
    assert e.wait_ready(10)
    with robot_loop_cls(e) as loop:
        waiter(lambda: e.stats.chunks_merged >= 2)
        waiter(lambda: any(not a.is_fallback for a in loop.actions))
    assert loop.errors == []
    a = next(a for a in loop.actions if not a.is_fallback)
    assert a.session_id.startswith("local-") and a.values.shape == (6,) and np.isfinite(a.values).all()
    assert e.session.rtc and e.session.model_fingerprint == e.runtime.fingerprint
    assert e.stats.state in (ClientState.STREAMING, ClientState.DEGRADED)


def test_reset_is_acknowledged_locally(demo_model, engines, waiter):
    e = LocalEngine(config(), ROBOT, model_path=demo_model)
    engines.append(e)
    e.start()
    assert e.wait_ready(10)
    assert e.reset(wait_s=5) is True
    assert e.episode_id == 1


def test_a_model_for_another_robot_fails_at_construction(demo_model):
    other = RobotSpec(action_names=tuple(f"joint_{i}.pos" for i in range(6)), cameras=("front",), fps=30.0)
    with pytest.raises(ContractViolation, match="names and order must match"):
        LocalEngine(config(), other, model_path=demo_model)


def test_a_robot_without_the_policy_camera_fails_at_construction(demo_model):
    with pytest.raises(ContractViolation, match="cameras"):
        LocalEngine(config(), RobotSpec(cameras=("wrist",), fps=30.0), model_path=demo_model)


def test_a_missing_model_is_a_config_error(tmp_path):
    with pytest.raises(InferenceConfigError, match="cannot be served"):
        LocalEngine(config(), ROBOT, model_path=tmp_path / "nope.onnx")


def test_without_spinal_server_the_local_engine_says_which_extra_to_install(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "spinal_server" else real(name, *a)
    )
    with pytest.raises(LocalBackendUnavailable, match=r"spinal-edge\[local\]"):
        LocalEngine(config(), ROBOT, model_path=tmp_path / "m.onnx")

"""The local engine: the server's own model runtime (`spinal_server.runtime.PolicyRuntime`) in-process.

For small policies on capable edges and for parity tests; needs the optional extra `spinal-edge[local]`.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spinal.protocol import SessionAck, Telemetry

from spinal_edge.inference.chunk_engine import ChunkEngine
from spinal_edge.inference.clock import Clock
from spinal_edge.inference.config import InferenceConfig
from spinal_edge.inference.errors import InferenceConfigError, LocalBackendUnavailable, RequestFailed
from spinal_edge.inference.failsafe import Transition
from spinal_edge.inference.handshake import session_info_from_ack
from spinal_edge.inference.source import (
    ChunkReply,
    ChunkRequest,
    LinkStatus,
    SessionInfo,
    SourceCounters,
)
from spinal_edge.inference.types import RobotSpec


def load_runtime(model_path: str | Path, *, device: str = "cpu", threads: int = 0) -> Any:
    """A `PolicyRuntime` for a model file (with its `policy.json`); raises our errors, not the server's."""
    if importlib.util.find_spec("spinal_server") is None:
        raise LocalBackendUnavailable(
            "the local engine needs spinal-server; install the edge's `local` extra (spinal-edge[local])"
        )
    runtime_mod = importlib.import_module("spinal_server.runtime")
    errors_mod = importlib.import_module("spinal_server.errors")
    try:
        return runtime_mod.PolicyRuntime.from_model_path(model_path, device=device, threads=threads)
    except errors_mod.ServerError as exc:
        raise InferenceConfigError(f"local model {model_path} cannot be served: {exc}") from None


class LocalChunkSource:
    """Answers each request by running the model on the worker thread, exactly as the server's worker does:
    a per-session processor state, reset at episode boundaries, task = observation's, session's or default."""

    def __init__(self, config: InferenceConfig, runtime: Any, *, warmup: int = 1) -> None:
        self._cfg = config
        self._runtime = runtime
        self._state: Any = None
        self._episode = -1
        self._rtc = False
        self._session_id = ""
        self._c = SourceCounters()
        self._lock = threading.Lock()
        if warmup:
            runtime.warmup(warmup)

    def describe(self, robot: RobotSpec) -> SessionInfo:
        """The session this model offers the robot (raises ContractViolation if it cannot drive it)."""
        rt = self._runtime
        spec = rt.spec
        ack = SessionAck(
            accepted=True,
            session_id=self._session_id or "local",
            model_repo=self._cfg.model_id,
            model_revision=spec.revision or "main",
            policy_type=spec.policy_type,
            action_names=list(spec.action_names),
            expected_cameras=list(spec.cameras),
            state_dim=spec.state_dim,
            chunk_size=spec.chunk_size,
            trained_fps=spec.fps,
            supports_rtc=bool(rt.supports_rtc),
            rtc_execution_horizon=spec.rtc.execution_horizon if rt.supports_rtc else 0,
            serving_mode="local",
            warmed_up=True,
            model_fingerprint=rt.fingerprint,
        )
        return session_info_from_ack(ack, self._cfg, robot)

    def open_session(self, epoch: int, robot: RobotSpec) -> SessionInfo:
        self._session_id = f"local-{uuid.uuid4().hex[:12]}"
        info = self.describe(robot)
        with self._lock:
            self._state = self._runtime.new_session_state()
            self._episode = -1  # like a fresh server session: the first observation resets it
            self._rtc = info.rtc
        return info

    def close_session(self) -> None:
        self._session_id = ""

    def request(self, request: ChunkRequest, timeout_s: float, cancelled: Callable[[], bool]) -> ChunkReply:
        obs = request.observation
        t0 = time.perf_counter()
        try:
            with self._lock:
                if obs.episode_start or request.episode_id != self._episode:
                    self._runtime.reset_session(self._state, request.episode_id)
                    self._episode = request.episode_id
                task = obs.task or self._cfg.task or self._runtime.default_task
                chunk_model, chunk_robot = self._runtime.infer(obs, self._state, rtc=self._rtc, task=task)
        except Exception as exc:  # the model's own errors: this request failed, the engine carries on
            raise RequestFailed(f"local model failed: {exc}") from None
        return ChunkReply(
            chunk_model=chunk_model,
            chunk_robot=chunk_robot,
            session_id=self._session_id,
            inference_ms=(time.perf_counter() - t0) * 1000.0,
        )

    def reset_episode(self, episode_id: int, timeout_s: float) -> bool:
        with self._lock:
            if self._state is not None:
                self._runtime.reset_session(self._state, episode_id)
                self._episode = episode_id
        return True

    def heartbeat(self, telemetry: Telemetry) -> None:
        self._c.heartbeats += 1

    def link_status(self) -> LinkStatus:
        return LinkStatus()

    def counters(self) -> SourceCounters:
        return self._c

    def set_wakeup(self, wakeup: Callable[[], None]) -> None:
        pass

    def interrupt(self) -> None:
        pass  # a local forward is not interruptible; it is short by assumption

    def close(self) -> None:
        pass


class LocalEngine(ChunkEngine):
    """`ChunkEngine` over the in-process model. Loads (or takes) the runtime and checks it fits the robot
    at construction, so a wrong model fails here with a clear error, not later in the control loop."""

    def __init__(
        self,
        config: InferenceConfig,
        robot: RobotSpec,
        *,
        model_path: str | Path | None = None,
        runtime: Any = None,
        device: str = "cpu",
        threads: int = 0,
        warmup: int = 1,
        clock: Clock | None = None,
        on_dead: Callable[[str], None] | None = None,
        on_transition: Callable[[Transition], None] | None = None,
    ) -> None:
        if runtime is None:
            if model_path is None:
                raise InferenceConfigError("the local engine needs model_path (a model with its policy.json)")
            runtime = load_runtime(model_path, device=device, threads=threads)
        source = LocalChunkSource(config, runtime, warmup=warmup)
        source.describe(robot)
        super().__init__(config, robot, source, clock=clock, on_dead=on_dead, on_transition=on_transition)
        self.runtime = runtime

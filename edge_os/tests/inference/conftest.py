"""Fixtures for the inference tests: a scripted chunk source for engine-logic tests, and wait helpers.

The scripted source stands in for the transport only in the unit tests of the engine's logic; every
network behaviour is tested against real Zenoh sessions in the loopback tests.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from spinal_edge.inference import RequestFailed, ServerUnavailable
from spinal_edge.inference.source import (
    ChunkReply,
    ChunkRequest,
    LinkStatus,
    RequestCancelled,
    SessionInfo,
    SourceCounters,
)
from spinal_edge.inference.types import SO101_ACTION_NAMES, RobotSpec


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `predicate` until truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


class ScriptedSource:
    """A ChunkSource whose handshakes, replies and link state the test scripts."""

    def __init__(self, session: SessionInfo) -> None:
        self.session = session
        self.session_outcomes: deque[SessionInfo | Exception] = deque()
        self.opens = 0
        self.closes = 0
        self.closed = False
        self.requests: list[ChunkRequest] = []
        self.responder: Callable[[ChunkRequest], ChunkReply] | None = None
        self.resets: list[int] = []
        self.reset_ok = True
        self.heartbeats: list[Any] = []
        self.link = LinkStatus()
        self._replies: deque[ChunkReply | Exception] = deque()
        self._cond = threading.Condition()
        self._wakeup: Callable[[], None] = lambda: None

    # ChunkSource ------------------------------------------------------------------------------
    def open_session(self, epoch: int, robot: RobotSpec) -> SessionInfo:
        self.opens += 1
        if not self.link.server_present:
            raise ServerUnavailable("no policy server answered the status query")
        if self.session_outcomes:
            outcome = self.session_outcomes.popleft()
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return dataclasses.replace(self.session, session_id=f"{self.session.session_id}-{self.opens}")

    def close_session(self) -> None:
        self.closes += 1

    def request(self, request: ChunkRequest, timeout_s: float, cancelled: Callable[[], bool]) -> ChunkReply:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
        if self.responder is not None:
            return self.responder(request)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if cancelled():
                    raise RequestCancelled("withdrawn")
                if self._replies:
                    reply = self._replies.popleft()
                    if isinstance(reply, Exception):
                        raise reply
                    return reply
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestFailed(f"no chunk within {timeout_s:.2f} s")
                self._cond.wait(min(remaining, 0.01))

    def reset_episode(self, episode_id: int, timeout_s: float) -> bool:
        self.resets.append(episode_id)
        return self.reset_ok

    def heartbeat(self, telemetry: Any) -> None:
        self.heartbeats.append(telemetry)

    def link_status(self) -> LinkStatus:
        return self.link

    def counters(self) -> SourceCounters:
        return SourceCounters(heartbeats=len(self.heartbeats))

    def set_wakeup(self, wakeup: Callable[[], None]) -> None:
        self._wakeup = wakeup

    def interrupt(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        self.closed = True

    # test controls ------------------------------------------------------------------------------
    def answer(self, reply: ChunkReply | Exception) -> None:
        with self._cond:
            self._replies.append(reply)
            self._cond.notify_all()

    def set_link(self, status: LinkStatus) -> None:
        self.link = status
        self._wakeup()


def ramp_chunk(state: np.ndarray, horizon: int = 10) -> ChunkReply:
    """chunk[t, j] = state[j] + t; robot space = model space + 100 (a visible postprocessor)."""
    model = (np.asarray(state, np.float32)[None, :] + np.arange(horizon, dtype=np.float32)[:, None]).astype(
        np.float32
    )
    return ChunkReply(chunk_model=model, chunk_robot=model + 100, inference_ms=5.0)


@pytest.fixture
def robot() -> RobotSpec:
    return RobotSpec(action_names=SO101_ACTION_NAMES, cameras=("front",), fps=10.0)


@pytest.fixture
def session_info() -> SessionInfo:
    return SessionInfo(
        session_id="sess",
        model_repo="tiny",
        model_revision="main",
        model_fingerprint="fp-A",
        action_names=SO101_ACTION_NAMES,
        expected_cameras=("front",),
        state_dim=6,
        chunk_size=10,
        rtc=True,
        rtc_execution_horizon=5,
        warmed_up=True,
    )


@pytest.fixture
def scripted(session_info: SessionInfo) -> ScriptedSource:
    return ScriptedSource(session_info)


@pytest.fixture
def scripted_source_cls() -> type[ScriptedSource]:
    return ScriptedSource


@pytest.fixture
def waiter() -> Callable[..., Any]:
    return wait_until


@pytest.fixture
def ramp() -> Callable[..., ChunkReply]:
    return ramp_chunk


# ---- real-network helpers (used with spinal_server.testing) ----------------------------------------


class RobotLoop:
    """A simulated control loop: notify + get_action at `fps` on its own thread, recording every action.

    Anything `get_action`/`notify_observation` raises is recorded (and fails the tests that check it).
    """

    def __init__(
        self,
        engine: Any,
        *,
        fps: float = 30.0,
        state: Callable[[int], np.ndarray] | None = None,
        image: Any = None,
    ) -> None:
        self.engine = engine
        self.period = 1.0 / fps
        self.state = state or (lambda i: np.zeros(6, np.float32))
        self.image = image if image is not None else np.full((96, 128, 3), 100, np.uint8)
        self.actions: list[Any] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="robot-loop", daemon=True)

    def __enter__(self) -> RobotLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        from spinal_edge.inference import RobotObservation

        i = 0
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self.engine.notify_observation(
                    RobotObservation(state=self.state(i), images={"front": self.image})
                )
                self.actions.append(self.engine.get_action())
            except BaseException as exc:  # recorded: the contract is that these never raise
                self.errors.append(exc)
            i += 1
            next_tick += self.period
            self._stop.wait(max(0.0, next_tick - time.monotonic()))


@pytest.fixture
def robot_loop_cls() -> type[RobotLoop]:
    return RobotLoop


@pytest.fixture
def engines() -> Any:
    """Collects engines; every one is stopped at teardown even when the test failed."""
    made: list[Any] = []
    yield made
    for e in made:
        e.stop(timeout_s=10)


class ServerProcess:
    """`python -m spinal_server serve` in a subprocess (so a test can SIGKILL it), started on `endpoint`.

    Written here rather than using `spinal_server.testing.server_subprocess` because that helper's probe
    gives a slow start (a loaded machine) a single 5 s connect attempt; this one waits up to `start_timeout`.
    """

    def __init__(self, model: Any, *, model_id: str, endpoint: str, workdir: Any, overrides: list[str] = ()):
        import subprocess
        import sys

        import yaml
        from spinal_server import testing

        self.endpoint = endpoint
        self.manifest = testing.make_test_manifest(
            model, model_id=model_id, overrides=[f"zenoh.listen=[{endpoint}]", *overrides]
        )
        self.keys = self.manifest.service_keys()
        path = workdir / f"server-{uuid_hex()}.yaml"
        path.write_text(yaml.safe_dump(self.manifest.model_dump(mode="json")))
        self.log_path = path.with_suffix(".log")
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spinal_server", "serve", "--manifest", str(path)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_serving(self, timeout: float = 60.0) -> ServerProcess:
        import zenoh
        from spinal_server import testing

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"spinal-server exited with {self.process.returncode}: {self.log_tail()}")
            try:
                with testing.PolicyClient(
                    self.endpoint, self.keys, declare_token=False, connect_retries=0
                ) as p:
                    p.status(timeout=2.0)
                    return self
            except (zenoh.ZError, TimeoutError, RuntimeError):
                time.sleep(0.2)
        raise TimeoutError(f"spinal-server did not answer status within {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-2000:]

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye; the kernel closes its sockets."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        from spinal_server import testing

        testing.stop_process(self.process)
        self._log.close()


def uuid_hex() -> str:
    import uuid

    return uuid.uuid4().hex[:8]


@pytest.fixture
def server_process(tmp_path):
    """Start servers in subprocesses; every one is stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[ServerProcess] = []

    def start(model: Any, *, model_id: str, endpoint: str, overrides: list[str] = ()) -> ServerProcess:
        proc = ServerProcess(
            model, model_id=model_id, endpoint=endpoint, workdir=tmp_path, overrides=overrides
        )
        started.append(proc)
        return proc.wait_serving()

    yield start
    for proc in started:
        proc.stop()

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

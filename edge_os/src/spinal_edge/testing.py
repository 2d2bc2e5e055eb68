"""Helpers for tests that drive the daemon: an in-memory arm and a daemon served on a free 127.0.0.1 port.

Used by edge_os/tests, tests/e2e and other components' tests (setup page, `spinal record`). The in-memory arm
stands in for the MCU only where a test is about something else; the MCU itself is tested with the HIL rig.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from spinal.robots import SO101_JOINTS

from spinal_edge.arm import ArmState, LeaderState
from spinal_edge.daemon import EdgeDaemon


class KinematicArm:
    """A follower that moves toward its target at `speed` units/s, an optional leader set by the test,
    and a record of every hold / torque / e-stop call. Thread-safe; state is computed when read."""

    def __init__(
        self,
        joint_names: tuple[str, ...] = SO101_JOINTS,
        *,
        leader: bool = False,
        speed: float = 200.0,
        start: np.ndarray | None = None,
    ) -> None:
        self._joint_names = tuple(joint_names)
        self._has_leader = leader
        self._speed = speed
        n = len(self._joint_names)
        self._position = np.zeros(n, dtype=np.float64) if start is None else np.array(start, dtype=np.float64)
        self._target: np.ndarray | None = None
        self._t = time.monotonic_ns()
        self._lock = threading.Lock()
        self._leader: np.ndarray | None = np.zeros(n) if leader else None
        self.reporting = True  # False: the MCU stops sending state (link fault)
        self.started = False
        self.holds = 0
        self.estops = 0
        self.torque = True
        self.targets_received = 0
        self.keepalives = 0

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self._joint_names

    @property
    def has_leader(self) -> bool:
        return self._has_leader

    @property
    def connected(self) -> bool:
        return self.started and self.reporting

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.hold()
        self.started = False

    def _advance(self, now_ns: int) -> None:
        dt = (now_ns - self._t) / 1e9
        self._t = now_ns
        if self._target is None or not self.torque:
            return
        step = np.clip(self._target - self._position, -self._speed * dt, self._speed * dt)
        self._position = self._position + step

    def latest_state(self) -> ArmState | None:
        if not self.started:
            return None
        now = time.monotonic_ns()
        with self._lock:
            if not self.reporting:
                return self._last_state if hasattr(self, "_last_state") else None
            self._advance(now)
            self._last_state = ArmState(
                t_mono_ns=now,
                positions=self._position.astype(np.float32),
                temperatures_c=np.full(len(self._joint_names), 30.0, dtype=np.float32),
                voltage_v=12.0,
                watchdog_hold=False,
                torque_enabled=self.torque,
            )
            return self._last_state

    def latest_leader(self) -> LeaderState | None:
        with self._lock:
            if self._leader is None:
                return None
            return LeaderState(time.monotonic_ns(), self._leader.astype(np.float32))

    def set_leader(self, positions: np.ndarray) -> None:
        with self._lock:
            self._leader = np.array(positions, dtype=np.float64)

    def send_targets(self, positions: np.ndarray) -> None:
        with self._lock:
            self._advance(time.monotonic_ns())
            self._target = np.array(positions, dtype=np.float64)
            self.targets_received += 1

    def keepalive(self) -> None:
        self.keepalives += 1

    def hold(self) -> None:
        with self._lock:
            self._advance(time.monotonic_ns())
            self._target = None
            self.holds += 1

    def set_torque(self, enabled: bool) -> None:
        with self._lock:
            self._advance(time.monotonic_ns())
            self.torque = enabled

    def estop(self) -> None:
        self.set_torque(False)
        self.estops += 1

    def status(self) -> dict[str, Any]:
        return {"simulated": True, "targets_received": self.targets_received, "holds": self.holds}


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy (returned) or raise TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)


class ServedDaemon:
    """A started daemon with its API on 127.0.0.1 (free port) and an authenticated httpx client."""

    def __init__(self, daemon: EdgeDaemon, *, token: str | None = None, port: int = 0) -> None:
        from spinal_edge.api.app import create_app

        self.daemon = daemon
        self.token = token or secrets.token_urlsafe(24)
        self.app = create_app(daemon, token=self.token)
        self._http = self._server(port)
        self.port = self._http.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30.0
        )
        self.anonymous = httpx.Client(base_url=self.url, timeout=30.0)

    def __enter__(self) -> ServedDaemon:
        self.daemon.start()
        self._http.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()
        self.anonymous.close()
        self._http.stop()
        self.daemon.stop()

    def stop_serving(self) -> None:
        """The network goes away: the API stops answering while the daemon (and a recording) runs on."""
        self._http.stop()

    def serve_again(self) -> None:
        """The network is back: the API answers again on the same port."""
        self._http = self._server(self.port)
        self._http.start()

    def _server(self, port: int) -> Any:
        from spinal_edge.runner import HttpServer

        return HttpServer(self.app, "127.0.0.1", port)


def data_dir_config(data_dir: Path, **sections: Any) -> dict[str, Any]:
    """A raw config table for tests: data under `data_dir`, HTTP on 127.0.0.1, plus the given sections."""
    raw: dict[str, Any] = {"data_dir": str(data_dir), "http": {"host": "127.0.0.1", "port": 8080}}
    raw.update(sections)
    return raw

"""The server over real Zenoh on 127.0.0.1: sessions, concurrency, isolation, hostile input, GC, drain, capture."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from spinal.protocol import MsgHeader, MsgType, Observation
from spinal_server.backends.base import ModelBackend
from spinal_server.replay import replay_directory
from spinal_server.runtime import PolicyRuntime
from spinal_server.testing import RemoteError, observation, running_server

SMALL = {"front": (48, 64)}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_status_answers_with_capabilities_and_load(demo_model: Path) -> None:
    with running_server(demo_model, model_id="demo") as rs, rs.client() as client:
        status = client.status()
        assert status.model_repo == "demo" and status.action_names[0] == "shoulder_pan.pos"
        assert status.camera_shapes == {"front": [96, 128]} and status.expected_cameras == ["front"]
        assert status.supports_rtc and status.batchable and status.warmed_up and not status.draining
        assert status.active_sessions == 0 and status.server_load == 0.0 and status.max_sessions == 5
        assert status.model_fingerprint == rs.server.runtime.fingerprint
        client.open_session()
        assert client.status().server_load == pytest.approx(0.2)


@pytest.mark.parametrize("scheduler", ["round_robin", "batch"])
def test_eight_concurrent_clients_each_get_their_own_chunks(relative_model: Path, scheduler: str) -> None:
    reference = PolicyRuntime.from_model_path(relative_model)
    failures: list[BaseException] = []
    overrides = [f"scheduler.kind={scheduler}", "scheduler.max_wait_ms=20", "max_sessions=8"]
    with running_server(relative_model, overrides=overrides) as rs:

        def robot(index: int) -> None:
            try:
                with rs.client(f"robot-{index}") as client:
                    assert client.open_session().accepted
                    for step in range(6):
                        obs = observation(
                            np.full(6, index * 10 + step, np.float32), cameras=SMALL, value=index * 20
                        )
                        seq = client.send(obs)
                        chunk = client.wait_for(seq, timeout=30)
                        assert chunk.seq_id_echo == seq and chunk.session_id == client.session.session_id
                        model, robot_units = reference.infer(obs)
                        assert chunk.chunk_model.tobytes() == model.tobytes()
                        assert chunk.chunk_robot.tobytes() == robot_units.tobytes()
            except BaseException as exc:  # surfaced in the main thread below
                failures.append(exc)

        threads = [threading.Thread(target=robot, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        assert not any(t.is_alive() for t in threads)
        assert not failures, failures
        assert rs.server.metrics.value("requests_total") == 48


def test_two_clients_with_different_states_never_cross_contaminate(relative_model: Path) -> None:
    overrides = ["scheduler.kind=batch", "scheduler.max_wait_ms=50"]
    with running_server(relative_model, overrides=overrides) as rs, rs.client("a") as a, rs.client("b") as b:
        a.open_session()
        b.open_session()
        for _ in range(15):
            seq_a = a.send(observation(np.full(6, 2.0), cameras=SMALL))
            seq_b = b.send(observation(np.full(6, 7.0), cameras=SMALL))
            chunk_a, chunk_b = a.wait_for(seq_a), b.wait_for(seq_b)
            # relative actions: each chunk is anchored on its own robot's state (plus a small ramp)
            assert np.all(np.abs(chunk_a.chunk_robot - 4.0) < 1.5), chunk_a.chunk_robot[:, 0]
            assert np.all(np.abs(chunk_b.chunk_robot - 14.0) < 1.5), chunk_b.chunk_robot[:, 0]


def test_batch_scheduler_serves_waiting_clients_in_one_forward(tiny_model: Path) -> None:
    overrides = ["scheduler.kind=batch", "scheduler.max_wait_ms=2000", "max_sessions=4"]
    with running_server(tiny_model, overrides=overrides) as rs:
        clients = [rs.client(f"c{i}") for i in range(4)]
        try:
            for c in clients:
                c.open_session()
            seqs = [c.send(observation(np.full(6, i), cameras=SMALL)) for i, c in enumerate(clients)]
            for c, seq in zip(clients, seqs, strict=True):
                c.wait_for(seq, timeout=30)
        finally:
            for c in clients:
                c.close()
        metrics = rs.server.metrics
        assert metrics.value("batch_size_sum") == 4
        assert metrics.value("batch_size_count") == 1  # all four waited for each other: one forward


def test_capacity_rejection_reports_load_and_rehandshake_is_not_counted(tiny_model: Path) -> None:
    with running_server(tiny_model, overrides=["max_sessions=2"]) as rs:
        a, b, c = rs.client("a"), rs.client("b"), rs.client("c")
        try:
            assert a.open_session().accepted and b.open_session().accepted
            first_id = a.session.session_id
            refused = c.open_session()
            assert not refused.accepted and refused.error.startswith("server full: 2/2")
            assert refused.server_load == pytest.approx(1.0)
            again = a.open_session()  # the same robot re-handshaking takes its own slot
            assert again.accepted and again.session_id != first_id
            assert rs.server.metrics.value("sessions_refused_total") == 1
            assert rs.server.metrics.value("sessions_closed_total", reason="replaced") == 1
        finally:
            for client in (a, b, c):
                client.close()


def test_session_open_refusals_reach_the_client(tiny_model: Path) -> None:
    with (
        running_server(tiny_model, overrides=["pin_task=true", "default_task=stack"]) as rs,
        rs.client() as c,
    ):
        names = c.status().action_names
        ack = c.open_session(action_names=list(reversed(names)), camera_names=["front"], state_dim=6)
        assert not ack.accepted and "different order" in ack.error
        ack = c.open_session(action_names=names, camera_names=["front"], state_dim=6, task="unstack")
        assert not ack.accepted and "pinned" in ack.error
        ack = c.open_session(
            action_names=names, camera_names=["front"], state_dim=6, rtc_enabled=True, fps=15
        )
        assert ack.accepted and ack.rtc_downgraded and len(ack.warnings) == 2


def test_garbage_from_an_unknown_client_is_counted_while_serving_continues(
    tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spinal_server")
    with (
        running_server(tiny_model) as rs,
        rs.client("good") as good,
        rs.client("stranger", declare_token=False) as bad,
    ):
        good.open_session()
        for i in range(5):
            bad.send_raw(b"\x00garbage" * (i + 1), None)
            bad.send_raw(b"\xc1\xc1", b"not a header")
            chunk = good.request(observation(np.full(6, i), cameras=SMALL))
            assert chunk.seq_id_echo == i + 1
        metrics = rs.server.metrics
        wait_until(
            lambda: metrics.value("dropped_total", reason="unknown_client") == 10, what="10 drops counted"
        )
        assert metrics.value("requests_total") == 5
        lines = [r for r in caplog.records if "unknown client 'stranger'" in r.getMessage()]
        assert len(lines) == 1  # logged once, counted every time


def test_foreign_schema_observations_are_counted_and_logged_once(
    tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="spinal_server")
    with running_server(tiny_model) as rs, rs.client("old-robot") as client:
        client.open_session()
        for _ in range(3):
            client.send(observation(np.zeros(6), cameras=SMALL), schema_version=99)
        header = MsgHeader(msg_type=MsgType.TELEMETRY, seq_id=1).pack()
        client.send_raw(b"\x80", header)  # a chunk-less message type on the obs key
        chunk = client.request(observation(np.ones(6), cameras=SMALL))
        assert chunk.chunk_robot is not None
        metrics = rs.server.metrics
        wait_until(lambda: metrics.value("dropped_total", reason="schema_version") == 3, what="schema drops")
        assert metrics.value("dropped_total", reason="msg_type") == 1
        lines = [r for r in caplog.records if "schema_version 99" in r.getMessage()]
        assert len(lines) == 1


def test_malformed_observation_is_answered_with_an_error_event(tiny_model: Path) -> None:
    with running_server(tiny_model) as rs, rs.client() as client:
        client.open_session()
        header = MsgHeader(msg_type=MsgType.OBS, seq_id=41)
        client.send_raw(b"\x93\x01\x02\x03", header.pack())  # valid msgpack, not an observation map
        with pytest.raises(RemoteError, match="malformed"):
            client.wait_for(41)
        missing_camera = Observation(state=np.zeros(6, np.float32))
        with pytest.raises(RemoteError, match="no image for camera 'front'"):
            client.request(missing_camera)
        assert client.request(observation(np.zeros(6), cameras=SMALL)).chunk_robot.shape == (10, 6)
        metrics = rs.server.metrics
        assert metrics.value("errors_total", kind="malformed") == 1
        assert metrics.value("errors_total", kind="observation") == 1


def test_rtc_session_gets_its_prefix_executed(demo_model: Path) -> None:
    with running_server(demo_model) as rs, rs.client() as client:
        ack = client.open_session(rtc_enabled=True)
        assert ack.accepted and ack.supports_rtc and ack.rtc_execution_horizon == 10
        prefix = np.full((10, 6), 0.25, np.float32)
        obs = observation([0, 0, 0, 0, 0, 50], inference_delay_steps=3, prefix_model=prefix)
        chunk = client.request(obs)
        np.testing.assert_array_equal(chunk.chunk_model[:3], prefix[:3])
        assert not np.allclose(chunk.chunk_model[3], 0.25)


def test_reset_and_close_are_acknowledged(tiny_model: Path) -> None:
    with (
        running_server(tiny_model) as rs,
        rs.client("r") as client,
        rs.client("x", declare_token=False) as other,
    ):
        client.open_session()
        assert client.request(observation(np.zeros(6), cameras=SMALL)).episode_id_echo == 0
        assert client.reset().ok
        assert rs.server.registry.get("r").episode_id == 1
        assert client.request(observation(np.zeros(6), cameras=SMALL)).episode_id_echo == 1
        unknown = other.reset()
        assert not unknown.ok and "no open session" in unknown.error
        assert client.close_session().ok
        assert rs.server.registry.get("r") is None
        assert not client.close_session().ok


def test_paused_client_heartbeat_keeps_its_session_while_a_silent_one_is_collected(tiny_model: Path) -> None:
    overrides = ["session_idle_timeout_s=1.0"]
    with (
        running_server(tiny_model, overrides=overrides) as rs,
        rs.client("paused") as paused,
        rs.client("silent") as silent,
    ):
        paused.open_session()
        silent.open_session()
        registry = rs.server.registry
        deadline = time.monotonic() + 10
        while registry.get("silent") is not None and time.monotonic() < deadline:
            paused.heartbeat(paused=True)
            time.sleep(0.1)
        assert registry.get("silent") is None
        for _ in range(15):  # well past the idle timeout, heartbeats only
            paused.heartbeat(paused=True)
            time.sleep(0.1)
        session = registry.get("paused")
        assert session is not None and session.paused
        assert paused.request(observation(np.zeros(6), cameras=SMALL)).session_id == paused.session.session_id
        assert rs.server.metrics.value("sessions_closed_total", reason="idle") == 1


def test_a_dead_clients_session_is_collected_but_a_reconnected_one_survives(tiny_model: Path) -> None:
    with running_server(tiny_model) as rs:
        registry = rs.server.registry
        gone = rs.client("gone")
        gone.open_session()
        gone.close()  # process death: its liveliness token disappears
        wait_until(lambda: registry.get("gone") is None, what="liveliness GC")
        assert rs.server.metrics.value("sessions_closed_total", reason="liveliness") == 1

        first = rs.client("flappy")
        first.open_session()
        first.close()  # token DELETE ...
        with rs.client("flappy") as second:  # ... and the same robot is back before the grace ends
            ack = second.open_session()
            time.sleep(rs.manifest.liveliness_grace_s + 1.0)
            session = registry.get("flappy")
            assert session is not None and session.session_id == ack.session_id
            assert second.request(observation(np.zeros(6), cameras=SMALL)).session_id == ack.session_id


class GatedBackend(ModelBackend):
    """Wraps a real backend; a forward blocks until the test releases it (to drain mid-inference)."""

    def __init__(self, inner: ModelBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def run(self, inputs, *, tasks=None):
        self.entered.set()
        assert self.release.wait(30), "test never released the forward"
        return self.inner.run(inputs, tasks=tasks)


def test_drain_finishes_the_in_flight_request_then_tells_the_client(tiny_model: Path) -> None:
    runtime = PolicyRuntime.from_model_path(tiny_model)
    gate = GatedBackend(runtime.backend)
    runtime.backend = gate
    with running_server(tiny_model, runtime=runtime) as rs, rs.client("busy") as client:
        client.open_session()
        assert client.server_alive()
        gate.release.clear()
        gate.entered.clear()
        seq = client.send(observation(np.full(6, 3.0), cameras=SMALL))
        assert gate.entered.wait(10), "the forward never started"
        drained = threading.Thread(target=rs.server.drain)
        drained.start()
        wait_until(lambda: rs.server.draining, what="draining flag")
        assert client.status().draining  # the control plane still answers, and says so
        # The liveliness token goes first, right after the flag (its drop reaches the client a moment later).
        wait_until(lambda: not client.server_alive(), what="the liveliness token dropped")
        assert drained.is_alive()  # waiting for the forward in flight
        gate.release.set()
        drained.join(20)
        assert not drained.is_alive()
        first = client.receive(10)
        assert first.chunk is not None and first.header.seq_id == seq  # the in-flight request completed
        event = client.receive(10)
        assert event.event is not None and event.event.kind == "drain"
        assert event.header.msg_type == MsgType.EVENT
        assert rs.server.metrics.value("sessions_closed_total", reason="drain") == 1


def test_captured_requests_replay_to_the_same_chunks(demo_model: Path, tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    overrides = [f"debug.capture_dir={capture}", "debug.capture_max=4", "scheduler.kind=batch"]
    with running_server(demo_model, overrides=overrides) as rs, rs.client("a") as a, rs.client("b") as b:
        a.open_session(rtc_enabled=True)
        b.open_session()
        for i in range(3):
            obs_a = observation(
                [i, 0, 10, 0, 0, 50], inference_delay_steps=2, prefix_model=np.ones((4, 6), np.float32)
            )
            seq_a = a.send(obs_a)
            seq_b = b.send(observation([-i, 5, 0, 0, 0, 30], value=40 * i))
            a.wait_for(seq_a)
            b.wait_for(seq_b)
    files = sorted(capture.glob("capture-*.safetensors"))
    assert len(files) == 4  # a ring of 4 holding the newest requests
    results = replay_directory(capture, PolicyRuntime.from_model_path(demo_model))
    assert len(results) == 4 and all(r.identical for r in results), results
    assert {r.client_uuid for r in results} == {"a", "b"}


def test_health_and_metrics_endpoints(tiny_model: Path) -> None:
    with running_server(tiny_model, health=True) as rs, rs.client() as client:
        client.open_session()
        client.request(observation(np.zeros(6), cameras=SMALL))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        health = json.loads(opener.open(f"{rs.health_url}/healthz", timeout=5).read())
        assert health["status"] == "ok" and health["active_sessions"] == 1
        text = opener.open(f"{rs.health_url}/metrics", timeout=5).read().decode()
        for name in (
            "spinal_server_requests_total 1.0",
            "spinal_server_active_sessions 1.0",
            "spinal_server_inference_ms_bucket",
            "spinal_server_queue_wait_ms_count 1.0",
            "spinal_server_batch_size_count 1.0",
            'spinal_server_dropped_total{reason="unknown_client"} 0.0',
        ):
            assert name in text, name
        with pytest.raises(urllib.error.HTTPError) as err:
            opener.open(f"{rs.health_url}/nope", timeout=5)
        assert err.value.code == 404


def test_every_request_writes_one_audit_line_with_ts_and_chunk_range(
    demo_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="spinal_server.audit")
    with running_server(demo_model) as rs, rs.client("audited") as client:
        client.open_session(rtc_enabled=True)
        client.request(
            observation(
                [0, 0, 0, 0, 0, 50], inference_delay_steps=3, prefix_model=np.zeros((5, 6), np.float32)
            )
        )
        client.request(observation([0, 0, 0, 0, 0, 50]))
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "spinal_server.audit"]
    assert len(lines) == 2
    first = lines[0]
    assert {
        "ts",
        "session_id",
        "client_uuid",
        "seq_id",
        "episode_id",
        "queue_wait_ms",
        "inference_ms",
    } <= first.keys()
    assert first["chunk_range"] == [3, 40] and lines[1]["chunk_range"] == [0, 40]
    assert first["client_uuid"] == "audited" and first["outcome"] == "ok" and first["ts"].endswith("+00:00")


class ResetCounting(ModelBackend):
    """Wraps a real backend and counts model resets (what exclusive mode adds on episode boundaries)."""

    def __init__(self, inner: ModelBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.resets = 0

    def run(self, inputs, *, tasks=None):
        return self.inner.run(inputs, tasks=tasks)

    def reset(self) -> None:
        self.resets += 1


def test_exclusive_mode_serves_one_robot_and_resets_the_model_per_episode(tiny_model: Path) -> None:
    runtime = PolicyRuntime.from_model_path(tiny_model)
    counting = ResetCounting(runtime.backend)
    runtime.backend = counting
    overrides = ["serving_mode=exclusive", "max_sessions=4"]
    with running_server(tiny_model, overrides=overrides, runtime=runtime) as rs, rs.client("one") as one:
        status = one.status()
        assert status.serving_mode == "exclusive" and status.max_sessions == 1
        assert one.open_session().accepted
        with rs.client("two") as two:
            refused = two.open_session()
            assert not refused.accepted and "exclusively" in refused.error
        one.request(observation(np.zeros(6), cameras=SMALL))  # first observation: a new episode
        assert counting.resets == 1
        one.request(observation(np.zeros(6), cameras=SMALL))
        assert counting.resets == 1
        assert one.reset().ok
        assert counting.resets == 2


def test_shared_mode_never_resets_the_shared_model(tiny_model: Path) -> None:
    runtime = PolicyRuntime.from_model_path(tiny_model)
    counting = ResetCounting(runtime.backend)
    runtime.backend = counting
    with running_server(tiny_model, runtime=runtime) as rs, rs.client("a") as a, rs.client("b") as b:
        for client in (a, b):
            client.open_session()
            client.request(observation(np.zeros(6), cameras=SMALL))
            assert client.reset().ok
            client.request(observation(np.zeros(6), cameras=SMALL))
        assert rs.server.serving_mode == "shared" and counting.resets == 0

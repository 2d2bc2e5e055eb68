"""Chaos over real Zenoh: the server process is SIGKILLed mid-episode, restarted on the same endpoint with
the same model (reconnect, resume) or another model (DEAD), or it hangs (per-request timeout)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import zenoh

testing = pytest.importorskip(
    "spinal_server.testing", reason="needs spinal-server (the edge's `local` extra)"
)
demo_policy = pytest.importorskip("spinal_server.demo_policy")

from spinal.protocol import (  # noqa: E402
    ServiceKeys,
    SessionAck,
    Status,
    decode_session_open,
    encode_message,
)
from spinal_edge.inference import ClientState, InferenceConfig, RobotSpec  # noqa: E402
from spinal_edge.inference.remote import RemoteEngine  # noqa: E402

S = ClientState
ROBOT = RobotSpec(cameras=("front",), fps=30.0)
MODEL_ID = "chaos-demo"

pytestmark = pytest.mark.slow


def chaos_config(endpoint: str, **overrides) -> InferenceConfig:
    base = dict(
        model_id=MODEL_ID,
        service="default",
        endpoints=[endpoint],
        lease_ms=1000,
        buffer_time_s=0.3,
        degraded_after_s=0.5,
        request_timeout_s=1.0,
        reconnect_after_s=1.0,
        max_offline_s=60.0,
        max_action_age_s=30.0,  # the test drains the queue itself; staleness is not what it checks
        heartbeat_s=0.2,
        backoff={"initial_s": 0.1, "max_s": 0.5},
    )
    base.update(overrides)
    return InferenceConfig(**base)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "a": demo_policy.build_demo_policy(root / "a"),
        "b": demo_policy.build_demo_policy(root / "b", chunk_size=30),  # another model, same robot
    }


@pytest.fixture
def endpoint() -> str:
    return f"tcp/127.0.0.1:{testing.free_tcp_port()}"


def stream_then_kill(e: RemoteEngine, srv, robot_loop_cls, waiter) -> tuple[ClientState, int]:
    """Stream until a chunk has just merged, stop the loop (the queue stays full), SIGKILL the server.

    Returns the state at the kill (a slow request may have degraded it) and how many transitions came before."""
    assert e.wait_ready(30)
    with robot_loop_cls(e) as loop:
        waiter(lambda: e.stats.chunks_merged >= 2, what="streaming")
        merged = e.stats.chunks_merged
        waiter(lambda: e.stats.chunks_merged > merged, what="a fresh chunk")
    assert loop.errors == []
    history = e.transitions
    srv.kill()
    return history[-1].after, len(history)


def drain_queue(e: RemoteEngine) -> tuple[int, object]:
    """Execute what is queued; returns how many real actions came out and the first fallback."""
    for executed in range(10_000):
        a = e.get_action()
        if a.is_fallback:
            return executed, a
    raise AssertionError("the queue never ran dry")


def test_killed_server_rides_the_queue_then_falls_back_then_reconnects(
    models, endpoint, server_process, engines, robot_loop_cls, waiter
):
    srv = server_process(models["a"], model_id=MODEL_ID, endpoint=endpoint)
    e = RemoteEngine(chaos_config(endpoint, reconnect_after_s=3.0), ROBOT)
    engines.append(e)
    e.start()
    at_kill, seen = stream_then_kill(e, srv, robot_loop_cls, waiter)
    waiter(lambda: e.state is S.DEGRADED, what="DEGRADED while actions remain")
    executed, fallback = drain_queue(e)
    assert executed >= 1
    assert fallback.values is None and fallback.state is S.STALLED  # hold: no new target
    waiter(lambda: e.state is S.RECONNECTING, what="RECONNECTING")
    assert not e.failed
    visited = [at_kill] + [t.after for t in e.transitions[seen:]]
    i = visited.index(S.DEGRADED)
    assert visited[i : i + 3] == [S.DEGRADED, S.STALLED, S.RECONNECTING]
    for _ in range(50):  # keeps answering with the fallback, never raising, while reconnecting
        assert e.get_action().is_fallback


def test_server_restarted_on_the_same_endpoint_is_rejoined(
    models, endpoint, server_process, engines, robot_loop_cls, waiter
):
    srv = server_process(models["a"], model_id=MODEL_ID, endpoint=endpoint)
    e = RemoteEngine(chaos_config(endpoint), ROBOT)
    engines.append(e)
    e.start()
    stream_then_kill(e, srv, robot_loop_cls, waiter)
    first_session = e.stats.session_id
    waiter(lambda: e.state is S.RECONNECTING, what="RECONNECTING")
    server_process(models["a"], model_id=MODEL_ID, endpoint=endpoint)
    with robot_loop_cls(e) as loop:
        waiter(lambda: e.stats.reconnects >= 1, timeout=30, what="a re-handshake")
        merged = e.stats.chunks_merged
        waiter(lambda: e.stats.chunks_merged > merged, what="chunks from the new server")
        waiter(lambda: e.state is S.STREAMING, what="STREAMING again")
        waiter(
            lambda: any(not a.is_fallback and a.session_id == e.stats.session_id for a in loop.actions),
            what="the new session's actions executed",
        )
        assert e.stats.session_id not in ("", first_session)
        after = [t.after for t in e.transitions]
    assert loop.errors == [] and not e.failed
    last_reconnecting = len(after) - 1 - after[::-1].index(S.RECONNECTING)
    assert after[last_reconnecting + 1] is not S.STREAMING  # no STREAMING before a chunk has merged


def test_server_restarted_with_another_model_is_fatal(
    models, endpoint, server_process, engines, robot_loop_cls, waiter
):
    reasons: list[str] = []
    srv = server_process(models["a"], model_id=MODEL_ID, endpoint=endpoint)
    e = RemoteEngine(chaos_config(endpoint), ROBOT, on_dead=reasons.append)
    engines.append(e)
    e.start()
    stream_then_kill(e, srv, robot_loop_cls, waiter)
    waiter(lambda: e.state is S.RECONNECTING, what="RECONNECTING")
    server_process(models["b"], model_id=MODEL_ID, endpoint=endpoint)
    waiter(lambda: reasons, timeout=30, what="DEAD and on_dead called")
    assert len(reasons) == 1 and "another model" in reasons[0]
    assert e.state is S.DEAD and e.get_action().is_fallback and not e.ready


class SilentServer:
    """A server that accepts sessions (status, session, token) and never answers an observation: hung."""

    def __init__(self, keys: ServiceKeys, endpoint: str) -> None:
        conf = zenoh.Config.from_json5(
            '{"mode": "router", "scouting": {"multicast": {"enabled": false}},'
            f' "listen": {{"endpoints": ["{endpoint}"]}}}}'
        )
        self.z = zenoh.open(conf)
        self.keys = keys
        self.observations = 0
        self.lock = threading.Lock()
        names = list(ROBOT.action_names)
        self.status = Status(
            model_repo=MODEL_ID, action_names=names, expected_cameras=["front"], state_dim=6,
            chunk_size=10, trained_fps=30.0, warmed_up=True, max_sessions=4, model_fingerprint="sha256:silent",
        )  # fmt: skip
        self.entities = [
            self.z.declare_queryable(
                keys.status, lambda q: q.reply(keys.status, encode_message(self.status))
            ),
            self.z.declare_queryable(keys.session, self._session),
            self.z.declare_subscriber(keys.all_obs, self._obs),
            self.z.liveliness().declare_token(keys.server_alive),
        ]

    def _session(self, query: zenoh.Query) -> None:
        msg = decode_session_open(query.payload.to_bytes())
        st = self.status
        ack = SessionAck(
            accepted=True, session_id=f"silent-{msg.client_uuid}", model_repo=st.model_repo,
            action_names=st.action_names, expected_cameras=st.expected_cameras, state_dim=6, chunk_size=10,
            trained_fps=30.0, warmed_up=True, model_fingerprint=st.model_fingerprint,
        )  # fmt: skip
        query.reply(self.keys.session, encode_message(ack))

    def _obs(self, sample: zenoh.Sample) -> None:
        with self.lock:
            self.observations += 1

    def close(self) -> None:
        for entity in self.entities:
            entity.undeclare()
        self.z.close()


def test_a_hung_server_costs_requests_not_the_control_loop(engines, robot_loop_cls, waiter):
    port = testing.free_tcp_port()
    endpoint = f"tcp/127.0.0.1:{port}"
    cfg = chaos_config(endpoint, request_timeout_s=0.3, reconnect_after_s=1.5)
    hung = SilentServer(cfg.service_keys(), endpoint)
    try:
        e = RemoteEngine(cfg, ROBOT)
        engines.append(e)
        e.start()
        assert e.wait_ready(20)
        with robot_loop_cls(e) as loop:
            waiter(lambda: e.stats.request_failures >= 2, what="per-request timeouts")
            waiter(lambda: e.stats.reconnects >= 1, what="a re-handshake after reconnect_after_s")
        assert hung.observations >= 2
        assert loop.errors == [] and all(a.is_fallback for a in loop.actions)
        assert e.stats.chunks_merged == 0 and not e.failed
        assert S.RECONNECTING in [t.after for t in e.transitions]
    finally:
        hung.close()

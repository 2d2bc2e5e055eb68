"""RemoteEngine against a real spinal-server over real Zenoh on 127.0.0.1: chunks, reset, pause/resume,
a stale chunk after reset, drain notices, and a model that does not fit the robot."""

from __future__ import annotations

import numpy as np
import pytest

testing = pytest.importorskip(
    "spinal_server.testing", reason="needs spinal-server (the edge's `local` extra)"
)

from spinal_edge.inference import (  # noqa: E402
    ClientState,
    InferenceConfig,
    RobotObservation,
    RobotSpec,
)
from spinal_edge.inference.impairment import Impairment, TcpImpairmentProxy  # noqa: E402
from spinal_edge.inference.remote import RemoteEngine  # noqa: E402

S = ClientState
ROBOT = RobotSpec(cameras=("front",), fps=30.0)


def remote_config(srv, endpoint: str | None = None, **overrides) -> InferenceConfig:
    base = dict(
        model_id=srv.manifest.service.model_id,
        service="default",
        endpoints=[endpoint or srv.endpoint],
        mode="client",
        lease_ms=1000,
        buffer_time_s=0.3,
        degraded_after_s=0.5,
        request_timeout_s=10.0,  # generous: these tests check behaviour, not speed, on a loaded machine
        reconnect_after_s=10.0,
        reset_timeout_s=5.0,
        max_offline_s=60.0,
        max_action_age_s=30.0,
        heartbeat_s=0.2,
        backoff={"initial_s": 0.1, "max_s": 0.5},
    )
    base.update(overrides)
    cfg = InferenceConfig(**base)
    assert cfg.service_keys() == srv.keys
    return cfg


@pytest.fixture(scope="module")
def server():
    with testing.running_server() as srv:
        yield srv


def started(engines, srv, robot: RobotSpec = ROBOT, endpoint: str | None = None, **kw) -> RemoteEngine:
    on_dead = kw.pop("on_dead", None)
    e = RemoteEngine(remote_config(srv, endpoint, **kw), robot, on_dead=on_dead)
    engines.append(e)
    e.start()
    return e


def test_chunks_stream_end_to_end_with_provenance(server, engines, robot_loop_cls, waiter):
    e = started(engines, server)
    assert e.wait_ready(20)
    with robot_loop_cls(e) as loop:
        waiter(lambda: e.stats.chunks_merged >= 3, what="three chunks")
    assert loop.errors == []
    real = [a for a in loop.actions if not a.is_fallback]
    assert real, "no action came from a chunk"
    a = real[-1]
    assert a.session_id == e.session.session_id and a.seq_id >= 1 and a.episode_id == 0
    assert a.values.shape == (6,) and np.isfinite(a.values).all()
    assert e.stats.state not in (S.CONNECTING, S.RECONNECTING, S.DEAD)
    assert e.stats.bad_messages == 0 and e.stats.request_failures == 0
    seqs = [x.seq_id for x in real]
    assert seqs == sorted(seqs)  # one request in flight: chunks are executed in request order
    server_session = server.server.registry.get(e.config.client_uuid)
    assert server_session is not None and server_session.session_id == e.session.session_id


def test_reset_round_trip_reaches_the_server(server, engines, robot_loop_cls, waiter):
    e = started(engines, server)
    assert e.wait_ready(20)
    with robot_loop_cls(e) as loop:
        waiter(lambda: e.stats.chunks_merged >= 1)
        assert e.reset(wait_s=5) is True
        assert server.server.registry.get(e.config.client_uuid).episode_id == 1
        merged = e.stats.chunks_merged
        waiter(lambda: e.stats.chunks_merged > merged, what="a chunk of the new episode")
        waiter(lambda: any(not a.is_fallback and a.episode_id == 1 for a in loop.actions))
    assert e.stats.reset_acks == 1
    after = loop.actions[next(i for i, a in enumerate(loop.actions) if a.episode_id == 1) :]
    assert all(a.episode_id == 1 for a in after if not a.is_fallback)


def test_pause_stops_requests_and_heartbeats_keep_the_session(server, engines, robot_loop_cls, waiter):
    e = started(engines, server)
    assert e.wait_ready(20)
    with robot_loop_cls(e):
        waiter(lambda: e.stats.chunks_merged >= 1)
        e.pause()
        requests = e.stats.requests
        beats = e.stats.heartbeats
        waiter(lambda: e.stats.heartbeats >= beats + 3, what="heartbeats while paused")
        waiter(lambda: server.server.registry.get(e.config.client_uuid).paused, what="server sees paused")
        assert e.stats.requests <= requests + 1  # at most the one in flight when pause() landed
        assert server.server.registry.get(e.config.client_uuid).session_id == e.session.session_id
        e.resume()
        merged = e.stats.chunks_merged
        waiter(lambda: e.stats.chunks_merged > merged, what="chunks after resume")


def test_a_chunk_answering_the_old_episode_is_never_merged(server, engines, waiter):
    with TcpImpairmentProxy(("127.0.0.1", int(server.endpoint.rsplit(":", 1)[1]))) as proxy:
        e = started(engines, server, endpoint=proxy.endpoint)
        assert e.wait_ready(20)
        proxy.set(Impairment(delay_s=0.3))  # 0.6 s round trip: the reset lands while the chunk flies
        registry = server.server.metrics.registry
        served_before = registry.get_sample_value("spinal_server_requests_total") or 0.0
        e.notify_observation(obs_front())
        waiter(lambda: e.stats.requests == 1)
        # Reset once the server has answered (its chunk is then 0.3 s out on the wire): a reset that reached the
        # server first would empty its mailbox, and no old chunk would ever come.
        waiter(
            lambda: (registry.get_sample_value("spinal_server_requests_total") or 0.0) > served_before,
            what="the server answering the old episode's observation",
        )
        assert e.reset(wait_s=10)
        e.notify_observation(obs_front())
        waiter(lambda: e.stats.chunks_merged == 1, timeout=20, what="the new episode's chunk")
        assert e.stats.stale_chunks + e.stats.dropped_after_reset >= 1  # the old chunk came and was dropped
        a = e.get_action()
        assert not a.is_fallback and a.episode_id == 1 and a.seq_id == 2


def test_a_drain_notice_makes_the_engine_re_handshake(engines, robot_loop_cls, waiter):
    with testing.running_server() as srv:
        e = started(engines, srv)
        assert e.wait_ready(20)
        with robot_loop_cls(e):
            waiter(lambda: e.stats.chunks_merged >= 1)
            srv.server.drain(timeout=10)
            waiter(lambda: e.stats.drain_notices >= 1, what="the drain event")
            waiter(lambda: e.state is S.RECONNECTING, what="re-handshaking after the drain")
    assert not e.failed


def test_a_model_for_another_robot_is_refused_before_the_robot_moves(server, engines, waiter):
    reasons: list[str] = []
    other = RobotSpec(action_names=tuple(f"joint_{i}.pos" for i in range(6)), cameras=("front",), fps=30.0)
    e = started(engines, server, robot=other, on_dead=reasons.append)
    waiter(lambda: reasons, what="DEAD and on_dead called")
    assert "names and order must match" in reasons[0]
    assert not e.ready and e.get_action().is_fallback


def obs_front(value: float = 0.0) -> RobotObservation:
    return RobotObservation(
        state=np.full(6, value, np.float32), images={"front": np.full((96, 128, 3), 100, np.uint8)}
    )


def test_stop_closes_the_session_at_the_server(server, engines, waiter):
    e = started(engines, server)
    assert e.wait_ready(20)
    uuid = e.config.client_uuid
    assert server.server.registry.get(uuid) is not None
    e.stop()
    assert server.server.registry.get(uuid) is None  # closed by the client, not left to the idle GC
    assert e.get_action().is_fallback and not e.ready

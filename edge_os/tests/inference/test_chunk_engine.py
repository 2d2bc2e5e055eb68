"""The engine's logic over a scripted source and a manual clock: gating, merging, staleness, fallbacks,
reset, pause, the fail-safe ladder, contract violations. The network is covered by the loopback tests."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import numpy as np
import pytest
from spinal_edge.inference import (
    ClientState,
    FallbackMode,
    InferenceConfig,
    ManualClock,
    RobotObservation,
    SessionRefused,
)
from spinal_edge.inference.chunk_engine import ChunkEngine
from spinal_edge.inference.source import LinkStatus
from spinal_edge.inference.types import SO101_ACTION_NAMES

S = ClientState


def config(**overrides) -> InferenceConfig:
    base = dict(
        model_id="tiny",
        buffer_time_s=0.3,  # fps 10: the next request goes out with 3 actions left
        degraded_after_s=1.0,
        reconnect_after_s=4.0,
        max_offline_s=60.0,
        max_action_age_s=3.0,
        request_timeout_s=2.0,
        heartbeat_s=1.0,
        backoff={"initial_s": 0.05, "max_s": 0.2, "jitter": 0.0},
    )
    base.update(overrides)
    return InferenceConfig(**base)


def obs(value: float = 0.0, **kw) -> RobotObservation:
    return RobotObservation(
        state=np.full(6, value, np.float32), images={"front": np.zeros((8, 8, 3), np.uint8)}, **kw
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def engine_factory(robot, scripted, clock) -> Iterator:
    engines: list[ChunkEngine] = []

    def make(cfg: InferenceConfig | None = None, *, start: bool = True, **kw) -> ChunkEngine:
        e = ChunkEngine(cfg or config(), robot, scripted, clock=clock, seed=0, **kw)
        engines.append(e)
        if start:
            e.start()
            assert e.wait_ready(5)
        return e

    yield make
    for e in engines:
        e.stop(timeout_s=5)


@pytest.fixture
def stream(scripted, waiter, ramp):
    """Send one observation and answer it: the engine has merged a 10-action chunk."""

    def go(e: ChunkEngine, value: float = 0.0) -> None:
        n = len(scripted.requests)
        merged = e.stats.chunks_merged
        e.notify_observation(obs(value))
        waiter(lambda: len(scripted.requests) > n, what="a request")
        scripted.answer(ramp(scripted.requests[-1].observation.state))
        waiter(lambda: e.stats.chunks_merged > merged, what="a merge")

    return go


def drain(e: ChunkEngine, k: int) -> list:
    return [e.get_action() for _ in range(k)]


def test_before_any_chunk_get_action_returns_the_fallback_with_provenance(engine_factory):
    e = engine_factory(config(fallback="hold"), start=False)
    a = e.get_action()
    assert a.values is None and a.fallback is FallbackMode.HOLD and a.is_fallback
    assert a.state is S.CONNECTING and a.chunk_index == -1 and math.isnan(a.age_s)
    assert e.stats.fallback_ticks == 1


def test_a_merged_chunk_is_executed_in_order_with_its_provenance(engine_factory, stream):
    e = engine_factory()
    stream(e, value=1.0)
    a = e.get_action()
    assert not a.is_fallback
    np.testing.assert_array_equal(a.values, np.full(6, 101.0, np.float32))  # robot space, index 0
    assert (a.session_id, a.seq_id, a.episode_id, a.chunk_index) == ("sess-1", 1, 0, 0)
    assert a.state is S.STREAMING
    assert e.get_action().values[0] == pytest.approx(102.0)


def test_latest_observation_wins_and_only_one_request_is_in_flight(engine_factory, scripted, waiter, ramp):
    e = engine_factory()
    e.notify_observation(obs(1.0))
    waiter(lambda: len(scripted.requests) == 1)
    for v in (2.0, 3.0, 4.0):  # arrive while the first request is outstanding
        e.notify_observation(obs(v))
    scripted.answer(ramp(scripted.requests[0].observation.state))
    waiter(lambda: e.stats.chunks_merged == 1)
    drain(e, 7)  # the gate opens at 3 actions left
    waiter(lambda: len(scripted.requests) == 2, what="the second request")
    assert scripted.requests[1].observation.state[0] == 4.0  # 2.0 and 3.0 were never sent
    assert scripted.requests[1].seq_id == 2


def test_no_request_while_the_queue_holds_more_than_buffer_time(
    engine_factory, scripted, stream, clock, waiter
):
    e = engine_factory()
    stream(e)
    drain(e, 6)  # 4 left = 0.4 s > 0.3 s
    e.notify_observation(obs(5.0))
    heartbeats = len(scripted.heartbeats)
    clock.advance(1.0)
    waiter(lambda: len(scripted.heartbeats) > heartbeats, what="a worker pass (heartbeat)")
    assert len(scripted.requests) == 1
    e.get_action()  # 3 left: the gate opens
    waiter(lambda: len(scripted.requests) == 2, what="the gated request")


def test_rtc_request_carries_the_prefix_and_the_latency_in_steps(
    engine_factory, scripted, waiter, clock, ramp
):
    def slow(req):
        clock.advance(0.25)  # the chunk takes 0.25 s: 3 control steps at 10 Hz
        return ramp(req.observation.state)

    e = engine_factory()
    first = scripted.requests.copy()
    assert not first
    scripted.responder = slow
    e.notify_observation(obs(0.0))
    waiter(lambda: e.stats.chunks_merged == 1)
    assert scripted.requests[0].observation.inference_delay_steps == 0  # no latency sample yet
    assert scripted.requests[0].observation.prefix_model is None
    assert scripted.requests[0].observation.episode_start
    assert e.stats.actions_trimmed == 0  # idle robot: nothing consumed, nothing trimmed
    drain(e, 7)
    e.notify_observation(obs(1.0))
    waiter(lambda: e.stats.chunks_merged == 2)
    second = scripted.requests[1].observation
    assert second.inference_delay_steps == 3
    assert second.prefix_model.shape == (3, 6) and second.prefix_robot.shape == (3, 6)
    np.testing.assert_array_equal(second.prefix_robot, second.prefix_model + 100)
    assert not second.episode_start


def test_a_late_chunk_degrades_then_the_empty_queue_stalls(engine_factory, stream, scripted, waiter, clock):
    e = engine_factory()
    stream(e)
    drain(e, 7)
    e.notify_observation(obs(1.0))
    waiter(lambda: len(scripted.requests) == 2)
    clock.advance(0.9)
    assert e.get_action().state is S.STREAMING
    clock.advance(0.2)  # wanted 1.1 s ago: later than degraded_after_s
    a = e.get_action()
    assert a.state is S.DEGRADED and not a.is_fallback
    last = e.get_action()
    assert not last.is_fallback
    a = e.get_action()
    assert a.is_fallback and a.state is S.STALLED


def test_actions_older_than_max_action_age_are_dropped_never_executed(engine_factory, stream, clock):
    e = engine_factory(config(fallback="zero"))
    stream(e)
    clock.advance(3.01)
    a = e.get_action()
    assert a.fallback is FallbackMode.ZERO
    np.testing.assert_array_equal(a.values, np.zeros(6, np.float32))
    assert e.stats.stale_drops == 10


def test_repeat_last_repeats_the_last_executed_action(engine_factory, stream, clock):
    e = engine_factory(config(fallback="repeat_last"))
    stream(e, value=2.0)
    executed = drain(e, 10)
    a = e.get_action()
    assert a.fallback is FallbackMode.REPEAT_LAST
    np.testing.assert_array_equal(a.values, executed[-1].values)
    assert a.seq_id == executed[-1].seq_id


def test_reset_withdraws_the_request_and_the_old_episode_chunk_is_never_merged(
    engine_factory, scripted, waiter, ramp
):
    e = engine_factory()
    e.notify_observation(obs(1.0))
    waiter(lambda: len(scripted.requests) == 1)
    assert e.reset(wait_s=5) is True  # acked by the source
    assert scripted.resets == [1]
    waiter(lambda: e.stats.requests_cancelled == 1)
    scripted.answer(ramp(np.full(6, 1.0)))  # the old episode's chunk shows up late
    assert e.get_action().is_fallback
    e.notify_observation(obs(7.0))
    waiter(lambda: len(scripted.requests) == 2)
    assert scripted.requests[1].episode_id == 1 and scripted.requests[1].observation.episode_start


def test_a_reset_racing_the_reply_drops_the_chunk_at_merge(engine_factory, scripted, waiter, ramp):
    e = engine_factory()

    def reply_after_reset(req):
        e.reset()
        return ramp(req.observation.state)

    scripted.responder = reply_after_reset
    e.notify_observation(obs(1.0))
    waiter(lambda: e.stats.dropped_after_reset == 1)
    assert e.stats.chunks_merged == 0
    assert e.queue.qsize() == 0


def test_pause_stops_requests_but_heartbeats_go_on(engine_factory, scripted, stream, waiter, clock):
    e = engine_factory()
    stream(e)
    e.pause()
    drain(e, 8)
    e.notify_observation(obs(3.0))
    for _ in range(2):
        beats = len(scripted.heartbeats)
        clock.advance(1.0)
        waiter(lambda b=beats: len(scripted.heartbeats) > b)
    assert scripted.heartbeats[-1].paused
    assert len(scripted.requests) == 1
    e.resume()
    waiter(lambda: len(scripted.requests) == 2, what="a request after resume")


def test_paused_before_any_chunk_keeps_its_session_until_the_server_is_gone(
    engine_factory, scripted, waiter, clock
):
    e = engine_factory(start=False)
    e.pause()  # e.g. the daemon starts idle: no observation, no chunk
    e.start()
    waiter(lambda: e.ready, what="the first session")
    for _ in range(12):  # three times reconnect_after_s
        beats = len(scripted.heartbeats)
        clock.advance(1.0)
        waiter(lambda b=beats: len(scripted.heartbeats) > b, what="a heartbeat while paused")
    assert scripted.opens == 1 and e.stats.reconnects == 0 and e.ready
    assert scripted.heartbeats[-1].paused and e.state is S.CONNECTING
    scripted.set_link(LinkStatus(server_present=False, detail="server liveliness token dropped"))
    for _ in range(3):  # the worker sees the server gone at the earliest now: 3 s is too early to give up
        beats = len(scripted.heartbeats)
        clock.advance(1.0)
        waiter(lambda b=beats: len(scripted.heartbeats) > b, what="a heartbeat with the server gone")
        assert scripted.opens == 1 and e.state is not S.RECONNECTING
    for _ in range(5):
        beats = len(scripted.heartbeats)
        clock.advance(1.0)
        waiter(lambda b=beats: len(scripted.heartbeats) > b or e.state is S.RECONNECTING, what="a pass")
        if e.state is S.RECONNECTING:
            break
    assert e.state is S.RECONNECTING and e.stats.state_entries.get("reconnecting") == 1


def test_bad_observations_and_bad_chunks_are_counted_not_used(engine_factory, scripted, waiter, ramp):
    e = engine_factory()
    e.notify_observation(RobotObservation(state=np.zeros(4), images={"front": np.zeros((8, 8, 3), np.uint8)}))
    waiter(lambda: e.stats.bad_observations == 1)
    e.notify_observation(RobotObservation(state=np.zeros(6), images={}))
    waiter(lambda: e.stats.bad_observations == 2)
    e.notify_observation(RobotObservation(state=np.zeros(6), images={"front": b"not a jpeg"}))
    waiter(lambda: e.stats.bad_observations == 3)
    assert scripted.requests == []
    e.notify_observation(obs(1.0))
    waiter(lambda: len(scripted.requests) == 1)
    bad = ramp(np.zeros(6))
    bad.chunk_robot[2, 3] = np.nan
    scripted.answer(bad)
    waiter(lambda: e.stats.bad_chunks == 1)
    assert e.stats.chunks_merged == 0 and e.get_action().is_fallback


def test_refused_handshakes_retry_with_backoff(engine_factory, scripted, waiter, clock):
    for _ in range(3):
        scripted.session_outcomes.append(SessionRefused("server full: 4/4 sessions active"))
    e = engine_factory(start=False)
    e.start()
    waiter(lambda: scripted.opens >= 1)
    assert e.state is S.CONNECTING
    for _ in range(10):  # each retry waits for its backoff on the engine clock
        if e.ready:
            break
        clock.advance(0.2)
        waiter(lambda o=scripted.opens: scripted.opens > o or e.ready, what="another handshake attempt")
    assert e.ready and scripted.opens == 4 and e.stats.handshake_failures == 3
    assert e.stats.state is S.CONNECTING  # a session, but no chunk yet


def test_offline_longer_than_max_offline_is_dead_and_calls_shutdown(engine_factory, scripted, waiter, clock):
    reasons: list[str] = []
    scripted.session_outcomes.extend(SessionRefused("full") for _ in range(1000))
    e = engine_factory(config(max_offline_s=5.0), start=False, on_dead=reasons.append)
    e.start()
    waiter(lambda: scripted.opens >= 1)
    clock.advance(5.0)
    waiter(lambda: reasons, what="DEAD and on_dead called")
    assert e.state is S.DEAD and len(reasons) == 1 and "offline" in reasons[0]
    assert e.get_action().is_fallback
    waiter(lambda: scripted.closed, what="transport released")


def test_server_loss_rides_the_queue_stalls_reconnects_and_resumes(
    engine_factory, scripted, stream, waiter, clock
):
    e = engine_factory()
    stream(e)
    scripted.set_link(LinkStatus(server_present=False, detail="liveliness token dropped"))
    waiter(lambda: e.state is S.DEGRADED, what="DEGRADED")
    assert not e.get_action().is_fallback
    drain(e, 9)
    assert e.get_action().state is S.STALLED
    clock.advance(4.0)
    waiter(lambda: e.state is S.RECONNECTING, what="RECONNECTING")
    scripted.set_link(LinkStatus(server_present=True))
    clock.advance(0.2)  # past the backoff of the failed attempt
    waiter(lambda: e.stats.reconnects == 1, what="a re-handshake")
    assert e.get_action().state is S.STALLED  # session back, but no chunk merged yet
    stream(e)
    assert e.get_action().state is S.STREAMING
    seq = [(t.before, t.after) for t in e.transitions]
    assert (S.DEGRADED, S.STALLED) in seq and (S.STALLED, S.RECONNECTING) in seq
    assert (S.RECONNECTING, S.STREAMING) not in seq


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"model_fingerprint": "fp-B"}, "another model"),
        ({"action_names": tuple(reversed(SO101_ACTION_NAMES))}, "action layout"),
        ({"rtc": False}, "RTC off"),
    ],
)
def test_a_server_back_with_another_contract_is_fatal(
    change, reason, engine_factory, scripted, session_info, stream, waiter, clock
):
    reasons: list[str] = []
    e = engine_factory(on_dead=reasons.append)
    stream(e)
    scripted.session_outcomes.append(dataclasses.replace(session_info, **change))
    scripted.set_link(LinkStatus(server_present=False))
    waiter(lambda: e.state is S.DEGRADED, what="the loss noticed")
    clock.advance(4.0)
    waiter(lambda: e.state is S.RECONNECTING, what="RECONNECTING")
    scripted.set_link(LinkStatus(server_present=True))  # the server is back ...
    clock.advance(0.2)
    waiter(lambda: reasons, what="DEAD and on_dead called")  # ... serving something else
    assert len(reasons) == 1 and reason in reasons[0]
    assert e.stats.failure_reason == reasons[0]
    assert e.get_action().is_fallback  # the queued actions of the old session are gone too
    assert scripted.closes >= 1


def test_a_request_failure_degrades_and_counts(engine_factory, scripted, stream, waiter, ramp):
    from spinal_edge.inference import RequestFailed

    e = engine_factory()
    stream(e)
    drain(e, 7)
    e.notify_observation(obs(1.0))
    waiter(lambda: len(scripted.requests) == 2)
    scripted.answer(RequestFailed("no chunk within 2.00 s"))
    waiter(lambda: e.stats.request_failures == 1)
    assert e.get_action().state is S.DEGRADED


def test_stop_closes_the_session_and_transport(engine_factory, scripted, stream):
    e = engine_factory()
    stream(e)
    e.stop()
    assert scripted.closes == 1 and scripted.closed
    assert e.get_action().is_fallback  # a stopped engine still answers, with its fallback

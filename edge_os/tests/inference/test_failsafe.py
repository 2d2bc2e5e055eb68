"""The fail-safe state machine, driven by explicit instants (no threads, no sleeps)."""

from __future__ import annotations

import pytest
from spinal_edge.inference import ClientState, FailSafe, FailSafeThresholds

S = ClientState


@pytest.fixture
def fsm() -> FailSafe:
    f = FailSafe(FailSafeThresholds(degraded_after_s=1.0, reconnect_after_s=4.0, max_offline_s=60.0))
    f.started(0.0)
    f.session_opened(0.1)
    return f


def streaming(f: FailSafe, t: float = 0.2) -> None:
    f.chunk_merged(t)
    assert f.evaluate(t, True) is S.STREAMING


def test_connecting_until_the_first_chunk_merges(fsm: FailSafe):
    assert fsm.evaluate(0.5, False) is S.CONNECTING
    fsm.chunk_merged(0.6)
    assert fsm.evaluate(0.6, True) is S.STREAMING
    assert fsm.transition_counts["connecting->streaming"] == 1


def test_a_wanted_chunk_later_than_degraded_after_s_degrades_without_any_failure(fsm: FailSafe):
    streaming(fsm)
    fsm.chunk_wanted(1.0)
    assert fsm.evaluate(1.9, True) is S.STREAMING
    assert fsm.evaluate(2.1, True) is S.DEGRADED
    fsm.chunk_merged(2.2)
    assert fsm.evaluate(2.2, True) is S.STREAMING


def test_a_full_queue_with_no_chunk_wanted_is_not_degraded(fsm: FailSafe):
    streaming(fsm)
    assert fsm.evaluate(30.0, True) is S.STREAMING  # time since the last chunk alone is no fault
    assert fsm.offline_for(30.0) is None


def test_the_queue_running_dry_stalls_and_a_merge_recovers(fsm: FailSafe):
    streaming(fsm)
    fsm.request_failed(1.0, "timeout")
    assert fsm.evaluate(1.0, True) is S.DEGRADED
    assert fsm.evaluate(1.5, False) is S.STALLED
    fsm.chunk_merged(1.6)
    assert fsm.evaluate(1.6, True) is S.STREAMING


def test_offline_time_counts_from_when_the_chunk_was_wanted(fsm: FailSafe):
    streaming(fsm)
    fsm.chunk_wanted(10.0)
    fsm.request_failed(12.0, "timeout")
    assert fsm.offline_for(12.0) == pytest.approx(2.0)
    assert not fsm.should_reconnect(13.9)
    assert fsm.should_reconnect(14.0)


def test_server_loss_rides_the_queue_then_stalls_then_reconnects(fsm: FailSafe):
    streaming(fsm)
    fsm.server_lost(5.0, "liveliness token dropped")
    assert fsm.evaluate(5.0, True) is S.DEGRADED
    assert fsm.evaluate(5.5, False) is S.STALLED
    assert fsm.should_reconnect(9.0)
    fsm.begin_reconnect(9.0, "offline 4 s")
    assert fsm.state is S.RECONNECTING
    seq = [(t.before, t.after) for t in fsm.history]
    assert seq[-3:] == [(S.STREAMING, S.DEGRADED), (S.DEGRADED, S.STALLED), (S.STALLED, S.RECONNECTING)]


def test_a_reconnect_does_not_show_streaming_before_a_chunk_merges(fsm: FailSafe):
    streaming(fsm)
    fsm.server_lost(1.0, "gone")
    fsm.begin_reconnect(5.0, "offline")
    fsm.session_opened(6.0)
    fsm.server_present(6.0)
    assert fsm.evaluate(6.0, True) is S.DEGRADED
    assert fsm.evaluate(6.1, False) is S.STALLED
    fsm.chunk_merged(6.5)
    assert fsm.evaluate(6.5, True) is S.STREAMING


def test_offline_past_max_offline_s_means_dead_but_a_pause_freezes_the_budget(fsm: FailSafe):
    streaming(fsm)
    fsm.server_lost(0.0, "gone")
    fsm.paused(1.0)
    assert not fsm.should_die(100.0)
    fsm.resumed(100.0)
    assert not fsm.should_die(159.0)
    assert fsm.should_die(160.0)
    assert fsm.die(160.0, "offline 60 s")
    assert not fsm.die(161.0, "again")
    assert fsm.state is S.DEAD and fsm.dead_reason == "offline 60 s"


def test_a_paused_engine_that_never_got_a_chunk_keeps_its_session(fsm: FailSafe):
    fsm.paused(0.2)  # offline since start (no chunk ever), but nothing is asked for
    for t in (4.1, 40.0, 400.0):
        assert not fsm.should_reconnect(t)
    assert not fsm.should_die(400.0)
    fsm.resumed(400.0)  # asking again: the offline budget starts now
    assert not fsm.should_reconnect(403.9)
    assert fsm.should_reconnect(404.0)


def test_a_paused_engine_reconnects_only_once_the_server_is_gone_for_reconnect_after_s(fsm: FailSafe):
    streaming(fsm)
    fsm.paused(1.0)
    fsm.server_lost(10.0, "server liveliness token dropped")
    fsm.server_present(12.0)  # a blip: back in time
    assert not fsm.should_reconnect(30.0)
    fsm.server_lost(30.0, "server liveliness token dropped")
    fsm.server_lost(31.0, "still gone")  # reported every worker pass: the first instant counts
    assert not fsm.should_reconnect(33.9)
    assert fsm.should_reconnect(34.0)


def test_dead_is_terminal(fsm: FailSafe):
    streaming(fsm)
    fsm.die(1.0, "contract violation")
    fsm.chunk_merged(2.0)
    fsm.session_opened(2.0)
    assert fsm.evaluate(2.0, True) is S.DEAD


def test_transitions_are_counted_and_reported_to_an_observer():
    seen = []
    f = FailSafe(FailSafeThresholds(1.0, 4.0, 60.0), on_transition=seen.append)
    f.started(0.0)
    f.session_opened(0.0)
    f.chunk_merged(0.1)
    f.evaluate(0.1, True)
    f.evaluate(0.2, False)
    f.evaluate(0.3, False)
    assert [(t.before, t.after) for t in seen] == [(S.CONNECTING, S.STREAMING), (S.STREAMING, S.STALLED)]
    assert f.state_entries["stalled"] == 1
    assert "fallback" in seen[-1].reason


def test_an_observer_that_raises_does_not_break_the_machine():
    def boom(_):
        raise RuntimeError("observer bug")

    f = FailSafe(FailSafeThresholds(1.0, 4.0, 60.0), on_transition=boom)
    f.started(0.0)
    f.session_opened(0.0)
    f.chunk_merged(0.0)
    assert f.evaluate(0.0, True) is S.STREAMING

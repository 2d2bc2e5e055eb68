"""ActionQueue: RTC replace with a trim clamped to what was consumed, append, staleness, thread safety."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from spinal_edge.inference import ActionQueue, ChunkOrigin


def chunk(start: float, n: int = 10, dim: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """model-space = start + row; robot-space = 2x model (distinguishable, like a postprocessor)."""
    model = (start + np.arange(n, dtype=np.float32))[:, None].repeat(dim, axis=1)
    return model, model * 2


def origin(seq: int, t: float = 0.0) -> ChunkOrigin:
    return ChunkOrigin("s1", seq, 0, t)


def pop_values(q: ActionQueue, k: int) -> list[float]:
    out = []
    for _ in range(k):
        a, _ = q.pop()
        assert a is not None
        out.append(float(a.values[0]))
    return out


def test_first_chunk_on_an_idle_queue_is_not_trimmed_for_time_nobody_executed():
    q = ActionQueue(replace=True)
    m, r = chunk(0)
    result = q.merge(m, r, real_delay=18, consumed_before=q.consumed_total, origin=origin(1))
    assert result.trimmed == 0
    assert result.requested_delay == 18
    assert q.qsize() == 10
    assert pop_values(q, 1) == [0.0]


def test_replace_trims_the_actions_consumed_while_the_request_was_in_flight():
    q = ActionQueue(replace=True)
    q.merge(*chunk(0), real_delay=0, consumed_before=0, origin=origin(1))
    before = q.consumed_total
    pop_values(q, 3)  # the robot executes 3 actions during the request
    result = q.merge(*chunk(100), real_delay=5, consumed_before=before, origin=origin(2))
    assert result.trimmed == 3  # min(5 measured steps, 3 consumed)
    assert q.qsize() == 7
    a, _ = q.pop()
    assert a is not None and a.values[0] == pytest.approx(2 * 103.0)
    assert a.chunk_index == 3 and a.origin.seq_id == 2


def test_replace_trim_never_exceeds_the_measured_delay():
    q = ActionQueue(replace=True)
    q.merge(*chunk(0), real_delay=0, consumed_before=0, origin=origin(1))
    before = q.consumed_total
    pop_values(q, 6)
    result = q.merge(*chunk(100), real_delay=2, consumed_before=before, origin=origin(2))
    assert result.trimmed == 2
    assert pop_values(q, 1) == [2 * 102.0]


def test_replace_drops_the_old_leftover_and_append_keeps_it():
    rq, aq = ActionQueue(replace=True), ActionQueue(replace=False)
    for q in (rq, aq):
        q.merge(*chunk(0, n=5), real_delay=0, consumed_before=0, origin=origin(1))
        pop_values(q, 2)
        q.merge(*chunk(100, n=5), real_delay=0, consumed_before=q.consumed_total, origin=origin(2))
    assert rq.qsize() == 5
    assert aq.qsize() == 3 + 5
    assert pop_values(aq, 4) == [4.0, 6.0, 8.0, 200.0]
    a, _ = aq.pop()
    assert a is not None and a.origin.seq_id == 2 and a.chunk_index == 1


def test_left_over_is_the_unconsumed_prefix_in_both_spaces_capped_at_the_horizon():
    q = ActionQueue(replace=True)
    q.merge(*chunk(0, n=10), real_delay=0, consumed_before=0, origin=origin(1))
    pop_values(q, 4)
    model, robot = q.left_over(horizon=3)
    assert model is not None and robot is not None
    np.testing.assert_array_equal(model[:, 0], [4, 5, 6])
    np.testing.assert_array_equal(robot, model * 2)
    model[0, 0] = -1  # a copy, not a view into the queue
    assert q.left_over(1)[0][0, 0] == 4


def test_stale_actions_are_dropped_and_counted_never_returned():
    q = ActionQueue(replace=False)
    q.merge(*chunk(0, n=3), real_delay=0, consumed_before=0, origin=origin(1, t=10.0))
    q.merge(*chunk(100, n=3), real_delay=0, consumed_before=q.consumed_total, origin=origin(2, t=20.0))
    assert q.has_fresh(15.0)
    a, dropped = q.pop(oldest_source_time=15.0)
    assert dropped == 3
    assert a is not None and a.origin.seq_id == 2
    pop_values(q, 2)
    assert not q.has_fresh(15.0)
    assert q.pop(15.0) == (None, 0)


def test_consumed_snapshot_survives_a_clear_during_the_request():
    q = ActionQueue(replace=True)
    q.merge(*chunk(0), real_delay=0, consumed_before=0, origin=origin(1))
    before = q.consumed_total
    pop_values(q, 2)
    q.clear()  # staleness bound emptied the queue mid-request
    result = q.merge(*chunk(100), real_delay=4, consumed_before=before, origin=origin(2))
    assert result.consumed_in_flight == 2 and result.trimmed == 2


def test_merge_rejects_mismatched_shapes():
    q = ActionQueue(replace=True)
    with pytest.raises(ValueError, match="equal 2-D"):
        q.merge(np.zeros((5, 6)), np.zeros((5, 5)), real_delay=0, consumed_before=0, origin=origin(1))
    q.merge(*chunk(0), real_delay=0, consumed_before=0, origin=origin(1))
    with pytest.raises(ValueError, match="columns"):
        q.merge(*chunk(0, dim=4), real_delay=0, consumed_before=0, origin=origin(2))


def test_concurrent_pops_and_merges_hand_out_each_action_once():
    q = ActionQueue(replace=False)
    n_chunks, n = 200, 10
    got: list[tuple[int, int]] = []
    done = threading.Event()

    def consumer() -> None:
        while not done.is_set() or q.qsize():
            a, _ = q.pop()
            if a is not None:
                got.append((a.origin.seq_id, a.chunk_index))

    t = threading.Thread(target=consumer)
    t.start()
    for seq in range(n_chunks):
        q.merge(*chunk(seq, n=n), real_delay=0, consumed_before=q.consumed_total, origin=origin(seq))
    done.set()
    t.join(10)
    assert not t.is_alive()
    assert len(got) == len(set(got)) == n_chunks * n
    assert q.consumed_total == n_chunks * n

"""The servo loop allocates nothing: many ticks run under micropython.heap_lock() without a MemoryError.

Covers targets in, goal stepping, sync write, sync read of follower and leader, STATE and LEADER out, a
watchdog HOLD, and the firmware's own allocation counter (alloc_ticks) in a free-running loop. (Large call
frames come from the heap and return to it within the call; under heap_lock they go on the C stack instead.
Neither leaves garbage: what matters for a real-time loop is that the heap never grows, so GC never runs.)
"""

import gc

import host
import micropython
from rigs import Bench
from spinalfw import proto


def _steady_bench():
    b = Bench(leader=True)
    b.configure(leader_bus=1, leader_ids=(1, 2, 3, 4, 5, 6))
    b.torque_on()
    b.tick(3)
    b.frames()
    return b


def _run_locked(b, ticks, frame_for):
    """Run `ticks` loop ticks with the heap locked; frame_for(i) gives the frame to feed first, or None."""
    port = b.hal.link
    fw = b.fw
    clock = b.clock
    gc.collect()
    micropython.heap_lock()
    try:
        for i in range(ticks):
            f = frame_for(i)
            if f is not None:
                port.feed(f, len(f))
            clock.now += 5
            fw.tick()
            port.tx_len = 0
    finally:
        micropython.heap_unlock()


def test_loop_with_targets_leader_and_state_runs_under_heap_lock():
    b = _steady_bench()
    frames = [host.frame(proto.MSG_TARGETS, 1000 + i, host.targets_payload([1500 + 10 * i] * 6)) for i in range(50)]
    _run_locked(b, 200, lambda i: frames[(i // 2) % 50] if i % 2 == 0 else None)
    fw = b.fw
    assert fw.target[0] == 1500 + 10 * 49
    # (alloc_ticks is not checked here: MicroPython's memory statistics also count the frame allocations that
    # fail under heap_lock and fall back to the C stack; test_free_running_loop_counts_no_allocating_ticks
    # checks the counter with the heap unlocked.)


def test_watchdog_hold_and_heartbeats_run_under_heap_lock():
    b = _steady_bench()
    heartbeat = host.frame(proto.MSG_HEARTBEAT, 7)
    # 20 ticks with heartbeats, then silence: the watchdog fires within the locked run.
    _run_locked(b, 80, lambda i: heartbeat if i < 20 else None)
    assert b.fw.hold


def test_free_running_loop_counts_no_allocating_ticks():
    b = _steady_bench()
    fw = b.fw
    for i in range(300):
        b.targets([1200 + i] * 6)
        b.tick()
        b.hal.link.tx_len = 0
    assert fw.alloc_ticks == 0

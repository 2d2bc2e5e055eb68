"""Real-time scheduling for the edge daemon: SCHED_FIFO for the loop and the daemon's threads, locked memory,
CPU pinning and timer slack. Each is refused cleanly, with a sentence naming the fix, where Linux does not allow it.

Used by the control loop (for its own thread) and by `spinal_edge.runner` (for the rest of the process).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_PR_SET_TIMERSLACK = 29
_MCL_CURRENT = 1
_MCL_FUTURE = 2
_MCL_ONFAULT = 4
_CAP_IPC_LOCK = 14
_RT_POLICIES = frozenset({os.SCHED_FIFO, os.SCHED_RR})


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def tighten_timer_slack() -> bool:
    """Ask Linux to wake the calling thread within 1 us of its timers instead of the default 50 us slack."""
    try:
        return _libc().prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def set_realtime_priority(priority: int, tid: int = 0) -> str:
    """Run thread `tid` (0: the caller) under SCHED_FIFO at `priority` (1..99); "" or why it was refused."""
    if priority <= 0:
        return ""
    try:
        os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return (
            f"SCHED_FIFO priority {priority} was refused ({reason}); allow it in the service with "
            f"LimitRTPRIO={priority} and RestrictRealtime=no (or give the process CAP_SYS_NICE)"
        )
    return ""


def realtime_priority_of(tid: int = 0) -> int:
    """The SCHED_FIFO/SCHED_RR priority of thread `tid` (0: the caller), or 0 under normal scheduling."""
    try:
        policy = os.sched_getscheduler(tid) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)
        return os.sched_getparam(tid).sched_priority if policy in _RT_POLICIES else 0
    except OSError:
        return 0


def process_thread_ids() -> list[int]:
    """The kernel thread ids of every thread of this process (Linux: /proc/self/task)."""
    try:
        return sorted(int(name) for name in os.listdir("/proc/self/task"))
    except OSError:
        return [threading.get_native_id()]


@dataclass(frozen=True, slots=True)
class Promotion:
    """What `promote_threads` did: threads moved to SCHED_FIFO, threads left (already higher), and any refusal."""

    promoted: int
    kept: int
    error: str


def promote_threads(priority: int, tids: Iterable[int] | None = None) -> Promotion:
    """Put every thread of this process (or `tids`) under SCHED_FIFO `priority`, except those already above it.

    A thread inherits its creator's scheduling, so threads started later by a promoted thread run at `priority`
    too. Child processes inherit it as well until they change it (the synthetic camera's renderer does).
    """
    if priority <= 0:
        return Promotion(0, 0, "")
    promoted = kept = 0
    for tid in process_thread_ids() if tids is None else tids:
        if realtime_priority_of(tid) >= priority:
            kept += 1  # the control loop, above the rest
            continue
        error = set_realtime_priority(priority, tid)
        if error:
            if not os.path.exists(f"/proc/self/task/{tid}"):
                continue  # the thread ended meanwhile
            return Promotion(promoted, kept, error)
        promoted += 1
    return Promotion(promoted, kept, "")


def _has_capability(bit: int) -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def lock_memory() -> str:
    """Keep the process's pages in RAM (mlockall, on fault): no page fault ever waits for the SD card.

    Pages are locked as they are touched (MCL_ONFAULT), so nothing is read in just to be locked. With an unlimited
    RLIMIT_MEMLOCK (or CAP_IPC_LOCK) future mappings are locked too; under a finite limit only the present ones,
    because a later allocation over the limit would fail. The limit counts mapped, not resident, memory (the
    daemon maps about 1.5 GB, mostly untouched thread stacks and arenas). Returns "" or why not.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    unlimited = soft == resource.RLIM_INFINITY or _has_capability(_CAP_IPC_LOCK)
    flags = _MCL_CURRENT | _MCL_ONFAULT | (_MCL_FUTURE if unlimited else 0)
    try:
        libc = _libc()
        if libc.mlockall(flags) == 0:
            return ""
        err = ctypes.get_errno()
    except (OSError, AttributeError) as exc:
        return f"memory was not locked ({exc}); set [loop] lock_memory = false"
    return (
        f"memory was not locked ({os.strerror(err)}); set LimitMEMLOCK=infinity in the service (mlockall must be "
        "allowed by its SystemCallFilter), or [loop] lock_memory = false"
    )


def pin_thread(cpus: Sequence[int]) -> str:
    """Run the calling thread only on `cpus` (e.g. a core kept free with isolcpus=); "" or why not."""
    if not cpus:
        return ""
    try:
        os.sched_setaffinity(0, set(cpus))
    except (OSError, ValueError) as exc:
        available = sorted(os.sched_getaffinity(0))
        return (
            f"[loop] cpus = {list(cpus)} cannot be used ({getattr(exc, 'strerror', None) or exc}); "
            f"choose among CPUs {available} or leave it empty"
        )
    return ""


@dataclass(slots=True)
class ProcessScheduling:
    """What the daemon's threads other than the loop obtained at start-up (shown in the status)."""

    daemon_priority: int = 0
    memory_locked: bool = False
    threads_promoted: int = 0
    errors: list[str] = field(default_factory=list)


def schedule_daemon_threads(priority: int, lock: bool) -> ProcessScheduling:
    """Once the daemon runs: every thread but the loop at SCHED_FIFO `priority`, then memory locked if asked.

    Done after start-up, not before, so that importing and building (seconds of CPU) never run above ordinary
    processes; threads created later inherit the priority of the thread that creates them.
    """
    result = ProcessScheduling()
    if priority > 0:
        promotion = promote_threads(priority)
        result.threads_promoted = promotion.promoted
        if promotion.error:
            result.errors.append(promotion.error)
        else:
            result.daemon_priority = priority
    if lock:
        error = lock_memory()
        if error:
            result.errors.append(error)
        else:
            result.memory_locked = True
    return result

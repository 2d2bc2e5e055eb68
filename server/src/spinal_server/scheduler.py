"""The scheduler seam: which ready sessions the inference worker serves next, and in how many forwards.

`RoundRobinScheduler` serves one session per forward; `MicroBatchScheduler` groups up to `max_batch`.
Both rotate through sessions by client id after the last one served, so no ready session starves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class Schedulable(Protocol):
    """What a scheduler reads from a session: its id and when its waiting observation arrived."""

    client_uuid: str

    @property
    def pending_since(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Selection:
    """The sessions to serve now (in order); when empty, `wait_s` says how long to wait for more."""

    sessions: list = field(default_factory=list)
    wait_s: float = 0.0


class Scheduler(ABC):
    """Picks from the ready sessions; the worker calls `select` once per cycle from one thread."""

    name = "scheduler"
    max_batch = 1

    def __init__(self) -> None:
        self._last_served: str | None = None

    @abstractmethod
    def select(self, ready: Sequence, *, active: int, now: float) -> Selection:
        """`ready`: sessions with a waiting observation; `active`: all open sessions; `now`: monotonic seconds."""

    def _rotation(self, ready: Sequence) -> list:
        """Ready sessions ordered by client id, starting just after the last one served (wrapping)."""
        ordered = sorted(ready, key=lambda s: s.client_uuid)
        if self._last_served is None:
            return ordered
        after = [s for s in ordered if s.client_uuid > self._last_served]
        before = [s for s in ordered if s.client_uuid <= self._last_served]
        return after + before

    def _served(self, chosen: list) -> Selection:
        if chosen:
            self._last_served = chosen[-1].client_uuid
        return Selection(chosen)


class RoundRobinScheduler(Scheduler):
    """Exactly one session per forward, in client-id rotation."""

    name = "round_robin"

    def select(self, ready: Sequence, *, active: int, now: float) -> Selection:
        return self._served(self._rotation(ready)[:1])


class MicroBatchScheduler(Scheduler):
    """Up to `max_batch` sessions per forward; waits at most `max_wait_s` (from the oldest waiting observation)
    for more to arrive, and not at all once every open session is waiting or the batch is full."""

    name = "batch"

    def __init__(self, max_batch: int, max_wait_s: float) -> None:
        super().__init__()
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_s)

    def select(self, ready: Sequence, *, active: int, now: float) -> Selection:
        if not ready:
            return Selection([], self.max_wait_s)
        oldest = min((s.pending_since for s in ready if s.pending_since is not None), default=now)
        waited = now - oldest
        if len(ready) < self.max_batch and len(ready) < active and waited < self.max_wait_s:
            return Selection([], self.max_wait_s - waited)
        return self._served(self._rotation(ready)[: self.max_batch])


def make_scheduler(kind: str, *, max_batch: int = 8, max_wait_ms: float = 5.0) -> Scheduler:
    if kind == "round_robin":
        return RoundRobinScheduler()
    if kind == "batch":
        return MicroBatchScheduler(max_batch, max_wait_ms / 1000.0)
    raise ValueError(f"scheduler kind {kind!r} is unknown; use round_robin or batch")

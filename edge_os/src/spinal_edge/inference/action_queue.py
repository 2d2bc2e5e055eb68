"""The action queue between the inference worker and the control loop: merges chunks, hands out actions.

Two merge semantics only: RTC replace with delay trim, and append. Thread-safe; `pop` is O(1) amortized.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from spinal_edge.inference.types import ChunkOrigin


@dataclass(frozen=True, slots=True)
class QueuedAction:
    """One action taken off the queue, with the chunk it came from and its index in that chunk."""

    values: np.ndarray
    origin: ChunkOrigin
    chunk_index: int


@dataclass(frozen=True, slots=True)
class MergeResult:
    """What a merge did: how many leading actions of the chunk were trimmed and the queue size after."""

    trimmed: int
    requested_delay: int
    consumed_in_flight: int
    queue_size: int


class ActionQueue:
    """Robot-space actions to execute, their model-space twins (the RTC prefix), and per-action provenance.

    `replace=True` (RTC): a merge replaces the queue with `chunk[delay:]`. `replace=False`: the unconsumed
    actions are kept and the whole chunk is appended. The trim is clamped to the actions actually consumed
    while the request was in flight, so a chunk answering an idle robot (empty queue at episode start) is
    never trimmed for time nobody executed.
    """

    def __init__(self, *, replace: bool) -> None:
        self._replace = replace
        self._lock = threading.Lock()
        self._robot: np.ndarray | None = None
        self._model: np.ndarray | None = None
        self._origins: list[ChunkOrigin] = []
        self._indices: list[int] = []
        self._next = 0
        self._consumed_total = 0

    @property
    def replace(self) -> bool:
        return self._replace

    def qsize(self) -> int:
        """Actions not yet handed out."""
        with self._lock:
            return len(self._origins) - self._next

    @property
    def consumed_total(self) -> int:
        """Actions handed out since the queue was made; never reset, so a snapshot survives clears."""
        with self._lock:
            return self._consumed_total

    def pop(self, oldest_source_time: float | None = None) -> tuple[QueuedAction | None, int]:
        """The next action whose observation is not older than `oldest_source_time`, and how many stale
        actions were dropped on the way (they are discarded, not executed)."""
        with self._lock:
            dropped = 0
            size = len(self._origins)
            if oldest_source_time is not None:
                while self._next < size and self._origins[self._next].source_time < oldest_source_time:
                    self._next += 1
                    dropped += 1
            if self._next >= size or self._robot is None:
                return None, dropped
            i = self._next
            self._next += 1
            self._consumed_total += 1
            return QueuedAction(self._robot[i].copy(), self._origins[i], self._indices[i]), dropped

    def has_fresh(self, oldest_source_time: float | None = None) -> bool:
        """True when at least one queued action is not older than `oldest_source_time`."""
        with self._lock:
            if self._next >= len(self._origins):
                return False
            # Later actions never come from an older observation, so the last one decides.
            return oldest_source_time is None or self._origins[-1].source_time >= oldest_source_time

    def left_over(self, horizon: int | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Copies of the unconsumed (model-space, robot-space) actions, at most `horizon` of them: the RTC prefix."""
        with self._lock:
            if self._robot is None or self._model is None or self._next >= len(self._origins):
                return None, None
            end = len(self._origins) if horizon is None else min(len(self._origins), self._next + horizon)
            return self._model[self._next : end].copy(), self._robot[self._next : end].copy()

    def merge(
        self,
        chunk_model: np.ndarray,
        chunk_robot: np.ndarray,
        *,
        real_delay: int,
        consumed_before: int,
        origin: ChunkOrigin,
    ) -> MergeResult:
        """Merge a chunk answering an observation sent when `consumed_total` was `consumed_before`.

        `real_delay` is the request's measured latency in control steps; the trim (replace mode) is
        `min(real_delay, actions consumed since the snapshot)`.
        """
        model = np.asarray(chunk_model, dtype=np.float32)
        robot = np.asarray(chunk_robot, dtype=np.float32)
        if robot.ndim != 2 or model.shape != robot.shape:
            raise ValueError(
                f"chunk_model {model.shape} and chunk_robot {robot.shape} must be equal 2-D [horizon, action_dim]"
            )
        with self._lock:
            if self._robot is not None and self._robot.shape[1] != robot.shape[1]:
                raise ValueError(
                    f"chunk has {robot.shape[1]} action columns but the queue holds {self._robot.shape[1]}"
                )
            consumed = max(0, self._consumed_total - consumed_before)
            requested = max(0, int(real_delay))
            if self._replace:
                trim = min(requested, consumed, robot.shape[0])
                self._robot = robot[trim:].copy()
                self._model = model[trim:].copy()
                self._origins = [origin] * (robot.shape[0] - trim)
                self._indices = list(range(trim, robot.shape[0]))
            else:
                trim = 0
                if self._robot is None:
                    keep_robot = robot[:0]
                    keep_model = model[:0]
                else:
                    keep_robot = self._robot[self._next :]
                    keep_model = self._model[self._next :] if self._model is not None else model[:0]
                self._robot = np.concatenate([keep_robot, robot])
                self._model = np.concatenate([keep_model, model])
                self._origins = self._origins[self._next :] + [origin] * robot.shape[0]
                self._indices = self._indices[self._next :] + list(range(robot.shape[0]))
            self._next = 0
            return MergeResult(trim, requested, consumed, len(self._origins))

    def clear(self) -> int:
        """Drop every queued action (episode reset, staleness); returns how many were dropped."""
        with self._lock:
            dropped = len(self._origins) - self._next
            self._robot = None
            self._model = None
            self._origins = []
            self._indices = []
            self._next = 0
            return dropped

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the unconsumed (model, robot) actions, for parity checks and debugging."""
        model, robot = self.left_over()
        if robot is None or model is None:
            empty = np.zeros((0, 0), np.float32)
            return empty, empty
        return model, robot

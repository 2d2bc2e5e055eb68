"""The fail-safe state machine: CONNECTING -> STREAMING <-> DEGRADED -> STALLED, RECONNECTING, DEAD.

Pure logic over an injected clock; the engine feeds it events and the queue's freshness, and reads the state.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

from spinal_edge.inference.types import ClientState

log = logging.getLogger("spinal_edge.inference")


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change, when it happened (engine clock) and why."""

    at: float
    before: ClientState
    after: ClientState
    reason: str


@dataclass(frozen=True, slots=True)
class FailSafeThresholds:
    """Seconds: a wanted chunk this late -> DEGRADED; offline this long -> re-handshake; -> DEAD."""

    degraded_after_s: float
    reconnect_after_s: float
    max_offline_s: float


class FailSafe:
    """Tracks the link and turns it, with the queue's freshness, into a `ClientState`.

    "Offline" starts at the earliest of: a wanted chunk becoming late (counted from when it was wanted), a
    failed request, the server's liveliness or a drain notice. It ends only when a chunk merges, so a
    reconnect never shows STREAMING before a chunk has actually arrived. The offline clock drives the
    re-handshake (`reconnect_after_s`) and DEAD (`max_offline_s`); a pause freezes it. A paused engine asks
    for no chunk, so a missing one proves nothing: it keeps its session (its heartbeats keep it alive at the
    server) and re-handshakes only when the server is really gone (its liveliness token dropped).
    """

    def __init__(
        self,
        thresholds: FailSafeThresholds,
        *,
        on_transition: Callable[[Transition], None] | None = None,
        history: int = 128,
    ) -> None:
        self._t = thresholds
        # Re-entrant: the control loop holds it across "pop an action, evaluate", so the worker can never
        # evaluate with a queue view older than the one the control loop just acted on.
        self._lock = threading.RLock()
        self._on_transition = on_transition
        self._state = ClientState.CONNECTING
        self._ever_merged = False
        self._merged_since_connect = False
        self._session_up = False
        self._reconnecting = False
        self._dead_reason: str | None = None
        self._server_present = True
        self._server_absent_since: float | None = None
        self._paused = False
        self._offline_since: float | None = None
        self._offline_reason = ""
        self._wanted_since: float | None = None
        self._session_since = 0.0
        self._last_eval = float("-inf")
        self._request_failed = False
        self.history: deque[Transition] = deque(maxlen=history)
        self.transition_counts: Counter[str] = Counter()
        self.state_entries: Counter[str] = Counter({ClientState.CONNECTING.value: 1})

    # ---- inputs --------------------------------------------------------------------------------

    def started(self, now: float) -> None:
        """The engine started: offline until the first chunk merges."""
        with self._lock:
            self._mark_offline(now, "starting: no session yet")

    def session_opened(self, now: float) -> None:
        """A handshake succeeded (first or re-): requests may flow; still offline until a chunk merges."""
        with self._lock:
            self._session_up = True
            self._session_since = now
            self._reconnecting = False
            self._merged_since_connect = False
            self._request_failed = False
            self._server_present = True
            self._server_absent_since = None

    def chunk_wanted(self, now: float) -> None:
        """The queue's playback fell to `buffer_time_s`: a chunk is due from now (if not already)."""
        with self._lock:
            if self._wanted_since is None:
                self._wanted_since = now

    def chunk_merged(self, now: float) -> None:
        """A chunk answering the latest request merged: the link is healthy."""
        with self._lock:
            self._ever_merged = True
            self._merged_since_connect = True
            self._offline_since = None
            self._offline_reason = ""
            self._wanted_since = None
            self._request_failed = False

    def request_failed(self, now: float, reason: str) -> None:
        """An observation went unanswered (timeout) or could not be sent."""
        with self._lock:
            self._request_failed = True
            self._mark_offline(self._wanted_since if self._wanted_since is not None else now, reason)

    def server_lost(self, now: float, reason: str) -> None:
        """The server's liveliness token dropped or it announced a drain."""
        with self._lock:
            self._server_present = False
            if self._server_absent_since is None:
                self._server_absent_since = now
            self._mark_offline(now, reason)

    def server_present(self, now: float) -> None:
        """The server's liveliness token is (back) up."""
        with self._lock:
            self._server_present = True
            self._server_absent_since = None

    def begin_reconnect(self, now: float, reason: str) -> None:
        """The worker abandoned the session and re-handshakes with backoff."""
        with self._lock:
            self._session_up = False
            self._reconnecting = True
            self._mark_offline(now, reason)
        self.evaluate(now, False, reason=reason)

    def die(self, now: float, reason: str) -> bool:
        """Enter DEAD (terminal); True the first time."""
        with self._lock:
            first = self._dead_reason is None
            if first:
                self._dead_reason = reason
        if first:
            self.evaluate(now, False, reason=reason)
        return first

    def paused(self, now: float) -> None:
        with self._lock:
            self._paused = True
            self._wanted_since = None

    def resumed(self, now: float) -> None:
        """Resume: a still-offline link gets a fresh offline budget (the pause did not spend it)."""
        with self._lock:
            self._paused = False
            if self._offline_since is not None:
                self._offline_since = now

    # ---- queries -------------------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        """Hold it to make a queue change and the evaluation that follows one step."""
        return self._lock

    @property
    def state(self) -> ClientState:
        with self._lock:
            return self._state

    @property
    def dead_reason(self) -> str | None:
        with self._lock:
            return self._dead_reason

    @property
    def session_up(self) -> bool:
        with self._lock:
            return self._session_up

    def offline_for(self, now: float) -> float | None:
        """Seconds offline, or None while the link is healthy (a late wanted chunk counts from its want)."""
        with self._lock:
            return self._offline_for(now)

    def should_reconnect(self, now: float) -> bool:
        """Offline for `reconnect_after_s` with a session up (a fresh session gets that long too): abandon
        it and re-handshake. While paused only a server gone that long counts (no chunk is asked for)."""
        with self._lock:
            if self._paused:
                since = self._server_absent_since
                off = None if since is None else max(0.0, now - since)
            else:
                off = self._offline_for(now)
            if not self._session_up or off is None:
                return False
            return min(off, now - self._session_since) >= self._t.reconnect_after_s

    def should_die(self, now: float) -> bool:
        """Offline for `max_offline_s` while not paused."""
        with self._lock:
            off = self._offline_for(now)
            return not self._paused and off is not None and off >= self._t.max_offline_s

    def evaluate(
        self, now: float, queue_fresh: bool | Callable[[], bool], *, reason: str | None = None
    ) -> ClientState:
        """The state for this instant given whether the queue holds a fresh action (a callable is asked
        under the lock, so the answer is current); records a change."""
        with self._lock:
            # Two threads evaluate; an instant read before the other's must not turn time back.
            now = self._last_eval = max(now, self._last_eval)
            fresh = queue_fresh() if callable(queue_fresh) else queue_fresh
            new, why = self._compute(now, fresh)
            old = self._state
            if new == old:
                return new
            self._state = new
            tr = Transition(now, old, new, reason or why)
            self.history.append(tr)
            self.transition_counts[f"{old.value}->{new.value}"] += 1
            self.state_entries[new.value] += 1
        level = logging.WARNING if new in (ClientState.STALLED, ClientState.DEAD) else logging.INFO
        log.log(
            level,
            "inference state %s -> %s: %s",
            old.value,
            new.value,
            tr.reason,
            extra={"event": "inference_state", "from": old.value, "to": new.value, "reason": tr.reason},
        )
        if self._on_transition is not None:
            try:
                self._on_transition(tr)
            except Exception:  # an observer's bug must not take the fail-safe down with it
                log.exception("inference state observer failed")
        return new

    # ---- internals (lock held) -----------------------------------------------------------------

    def _mark_offline(self, since: float, reason: str) -> None:
        if self._offline_since is None or since < self._offline_since:
            self._offline_since = since
            self._offline_reason = reason

    def _late(self, now: float) -> bool:
        return self._wanted_since is not None and now - self._wanted_since > self._t.degraded_after_s

    def _offline_for(self, now: float) -> float | None:
        since = self._offline_since
        if self._late(now) and (since is None or self._wanted_since < since):  # type: ignore[operator]
            since = self._wanted_since
        return None if since is None else max(0.0, now - since)

    def _compute(self, now: float, queue_fresh: bool) -> tuple[ClientState, str]:
        if self._dead_reason is not None:
            return ClientState.DEAD, self._dead_reason
        if self._reconnecting:
            return ClientState.RECONNECTING, self._offline_reason or "re-handshaking"
        if not self._ever_merged:
            return ClientState.CONNECTING, "waiting for the first chunk"
        if not queue_fresh:
            return ClientState.STALLED, "no fresh action queued: fallback in effect"
        if self._late(now):
            return ClientState.DEGRADED, f"no chunk for {now - self._wanted_since:.2f} s after it was due"  # type: ignore[operator]
        if (
            self._offline_since is not None
            or self._request_failed
            or not self._server_present
            or not self._merged_since_connect
        ):
            return ClientState.DEGRADED, self._offline_reason or "link unhealthy; riding the queue"
        return ClientState.STREAMING, "chunks arriving"

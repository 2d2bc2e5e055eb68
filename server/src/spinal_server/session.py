"""Robot sessions: identity, the latest-only observation mailbox, per-session processor state, liveness.

The Zenoh callbacks deposit into mailboxes; the inference worker takes from them; the registry is shared by both.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spinal.protocol import MsgHeader

from spinal_server.processing import SessionProcessorState


@dataclass(frozen=True, slots=True)
class MailboxItem:
    """One received observation, still encoded: header, body bytes, and when it arrived (server monotonic)."""

    header: MsgHeader
    body: bytes
    received_mono: float


class Mailbox:
    """A one-slot, newest-wins holder; an overwritten observation is counted as superseded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: MailboxItem | None = None
        self.superseded_total = 0
        self._superseded_since_reply = 0

    def deposit(self, item: MailboxItem) -> bool:
        """Store `item`; True when it replaced an observation the worker had not taken yet."""
        with self._lock:
            replaced = self._item is not None
            if replaced:
                self.superseded_total += 1
                self._superseded_since_reply += 1
            self._item = item
            return replaced

    def take(self) -> MailboxItem | None:
        with self._lock:
            item, self._item = self._item, None
            return item

    def clear(self) -> MailboxItem | None:
        return self.take()

    def take_superseded(self) -> int:
        """Observations dropped since the last reply (reported in the next chunk), then zero."""
        with self._lock:
            count, self._superseded_since_reply = self._superseded_since_reply, 0
            return count

    @property
    def pending_since(self) -> float | None:
        """Arrival time of the waiting observation, or None when the slot is empty."""
        item = self._item
        return item.received_mono if item is not None else None


@dataclass
class SessionStats:
    requests: int = 0
    errors: int = 0
    last_queue_wait_ms: float = 0.0
    last_inference_ms: float = 0.0


@dataclass
class Session:
    """One robot connected to this server: created at session open, ended by close, GC or drain."""

    session_id: str
    client_uuid: str
    task: str
    robot_type: str
    rtc_enabled: bool
    processor: SessionProcessorState
    publish: Callable[[bytes, bytes], None]
    opened_mono: float = field(default_factory=time.monotonic)
    tags: dict[str, str] = field(default_factory=dict)
    mailbox: Mailbox = field(default_factory=Mailbox)
    stats: SessionStats = field(default_factory=SessionStats)
    episode_id: int = -1
    last_seen_mono: float = field(default_factory=time.monotonic)
    token_dropped_mono: float | None = None
    paused: bool = False
    closed: bool = False
    undeclare: Callable[[], None] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def pending_since(self) -> float | None:
        return self.mailbox.pending_since

    def touch(self, now: float | None = None) -> None:
        """Anything the client sent (observation, heartbeat, reset, re-open) proves it is still there."""
        self.last_seen_mono = time.monotonic() if now is None else now

    def close(self) -> None:
        """Idempotent: drop the mailbox and undeclare the action publisher."""
        if self.closed:
            return
        self.closed = True
        self.mailbox.clear()
        if self.undeclare is not None:
            with contextlib.suppress(Exception):  # a publisher already gone must not stop a close
                self.undeclare()


class SessionRegistry:
    """client_uuid -> Session, behind one lock; removal checks identity so a GC race never kills a replacement."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def add(self, session: Session) -> Session | None:
        """Register `session`; returns the one it displaced (same client re-opening), which the caller closes."""
        with self._lock:
            old = self._sessions.get(session.client_uuid)
            self._sessions[session.client_uuid] = session
            return old

    def get(self, client_uuid: str) -> Session | None:
        return self._sessions.get(client_uuid)

    def remove(self, client_uuid: str, expected: Session | None = None) -> Session | None:
        with self._lock:
            current = self._sessions.get(client_uuid)
            if current is None or (expected is not None and current is not expected):
                return None
            del self._sessions[client_uuid]
            return current

    def snapshot(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())

    def ready(self) -> list[Session]:
        """Sessions with an observation waiting."""
        return [s for s in self.snapshot() if s.mailbox.pending_since is not None]

    def __len__(self) -> int:
        return len(self._sessions)

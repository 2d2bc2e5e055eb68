"""Browser sessions of the setup page: random ids in a cookie, each with its CSRF token, held in memory.

Used by the auth dependency and the login routes. A daemon restart logs everyone out, on purpose.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class BrowserSession:
    """One browser: anonymous (before login, for the login form's CSRF token) or logged in."""

    id: str
    csrf_token: str
    authenticated: bool
    created: float
    last_seen: float
    client: str = ""
    flash: list[str] = field(default_factory=list)


class SessionStore:
    """Sessions keyed by their secret id, expired after idle and absolute timeouts, bounded in number."""

    def __init__(
        self,
        *,
        idle_timeout_s: float = 12 * 3600,
        absolute_timeout_s: float = 7 * 24 * 3600,
        max_authenticated: int = 32,
        max_anonymous: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.absolute_timeout_s = absolute_timeout_s
        self._max = {True: max_authenticated, False: max_anonymous}
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, BrowserSession] = {}

    def get(self, session_id: str | None) -> BrowserSession | None:
        """The live session with this id (touching it), or None when unknown or expired."""
        if not session_id or len(session_id) > 128:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def new_anonymous(self, client: str = "") -> BrowserSession:
        """A session that only carries a CSRF token for the setup and login forms."""
        return self._new(authenticated=False, client=client)

    def login(self, previous: BrowserSession | None, client: str = "") -> BrowserSession:
        """A logged-in session under a new id (the old one is dropped, so a planted id never gains rights)."""
        if previous is not None:
            self.logout(previous.id)
        return self._new(authenticated=True, client=client)

    def logout(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def revoke_all(self, *, keep: str | None = None) -> int:
        """Log every session out except `keep` (after a password change or factory reset); returns how many."""
        with self._lock:
            doomed = [sid for sid in self._sessions if sid != keep]
            for sid in doomed:
                del self._sessions[sid]
            return len(doomed)

    def count(self, *, authenticated: bool) -> int:
        with self._lock:
            return sum(1 for s in self._sessions.values() if s.authenticated == authenticated)

    def _new(self, *, authenticated: bool, client: str) -> BrowserSession:
        now = self._clock()
        session = BrowserSession(
            id=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            authenticated=authenticated,
            created=now,
            last_seen=now,
            client=client,
        )
        with self._lock:
            self._prune(now)
            same_kind = [s for s in self._sessions.values() if s.authenticated == authenticated]
            if len(same_kind) >= self._max[authenticated]:
                oldest = min(same_kind, key=lambda s: s.last_seen)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def _expired(self, session: BrowserSession, now: float) -> bool:
        return (
            now - session.last_seen > self.idle_timeout_s or now - session.created > self.absolute_timeout_s
        )

    def _prune(self, now: float) -> None:
        for sid in [sid for sid, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[sid]

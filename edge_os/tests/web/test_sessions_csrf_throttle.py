"""Browser sessions, the CSRF checks and login rate limiting (with an injected clock, no sleeps)."""

from __future__ import annotations

import pytest
from spinal_edge.web.csrf import check_csrf_token, check_same_origin
from spinal_edge.web.errors import CsrfRejected, LoginThrottled
from spinal_edge.web.login_throttle import LoginThrottle
from spinal_edge.web.sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_login_rotates_the_session_id_and_drops_the_anonymous_one():
    store = SessionStore()
    anon = store.new_anonymous("10.0.0.2")
    session = store.login(anon, "10.0.0.2")
    assert session.authenticated and session.id != anon.id and session.csrf_token != anon.csrf_token
    assert store.get(anon.id) is None
    assert store.get(session.id) is session


def test_sessions_expire_when_idle_and_at_their_absolute_age():
    clock = Clock()
    store = SessionStore(idle_timeout_s=60, absolute_timeout_s=300, clock=clock)
    s = store.login(None)
    clock.now += 59
    assert store.get(s.id) is s
    clock.now += 61
    assert store.get(s.id) is None
    t = store.login(None)
    for _ in range(6):
        clock.now += 55
        store.get(t.id)
    assert store.get(t.id) is None


def test_logout_and_revoke_all_end_sessions():
    store = SessionStore()
    a, b, c = store.login(None), store.login(None), store.login(None)
    store.logout(a.id)
    assert store.get(a.id) is None
    assert store.revoke_all(keep=b.id) == 1
    assert store.get(b.id) is b and store.get(c.id) is None


def test_session_count_is_bounded_by_evicting_the_least_recent():
    clock = Clock()
    store = SessionStore(max_anonymous=3, clock=clock)
    first = store.new_anonymous()
    for _ in range(5):
        clock.now += 1
        store.new_anonymous()
    assert store.count(authenticated=False) == 3
    assert store.get(first.id) is None
    assert store.get("") is None and store.get("x" * 500) is None


def test_csrf_token_must_match_the_session():
    session = SessionStore().new_anonymous()
    check_csrf_token(session, session.csrf_token)
    for bad in (None, "", session.csrf_token[:-1], "x" * 43):
        with pytest.raises(CsrfRejected):
            check_csrf_token(session, bad)


def test_same_origin_check_refuses_other_sites():
    check_same_origin({}, "device.local:8080")
    check_same_origin(
        {"origin": "http://device.local:8080", "sec-fetch-site": "same-origin"}, "device.local:8080"
    )
    check_same_origin({"referer": "http://device.local:8080/network"}, "device.local:8080")
    for headers in (
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"referer": "http://evil.example/x"},
        {"origin": "http://device.local:9999"},
    ):
        with pytest.raises(CsrfRejected):
            check_same_origin(headers, "device.local:8080")


def test_throttle_locks_a_client_after_repeated_failures_with_growing_waits():
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, lockout_s=10, max_lockout_s=25, clock=clock)
    for _ in range(3):
        throttle.check("a")
        throttle.failed("a")
    with pytest.raises(LoginThrottled) as exc:
        throttle.check("a")
    assert 9 < exc.value.retry_after_s <= 10
    throttle.check("b")  # another client is not affected
    clock.now += 10.5
    throttle.check("a")
    for _ in range(3):
        throttle.failed("a")
    with pytest.raises(LoginThrottled) as exc:
        throttle.check("a")
    assert 19 < exc.value.retry_after_s <= 20  # doubled
    clock.now += 21
    for _ in range(3):
        throttle.failed("a")
    with pytest.raises(LoginThrottled) as exc:
        throttle.check("a")
    assert exc.value.retry_after_s <= 25  # capped
    assert throttle.refused == 3


def test_success_clears_a_clients_record():
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, clock=clock)
    throttle.failed("a")
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    throttle.failed("a")
    throttle.check("a")


def test_global_limit_stops_guessing_from_many_addresses():
    clock = Clock()
    throttle = LoginThrottle(max_failures=100, global_max_failures=10, window_s=60, clock=clock)
    for i in range(10):
        throttle.failed(f"10.0.0.{i}")
    with pytest.raises(LoginThrottled):
        throttle.check("10.0.1.1")
    clock.now += 61
    throttle.check("10.0.1.1")


def test_throttle_memory_is_bounded():
    throttle = LoginThrottle(max_clients=50, global_max_failures=10**6)
    for i in range(500):
        throttle.failed(f"client-{i}")
    assert len(throttle._clients) <= 50


@pytest.mark.parametrize(
    ("scheme", "policy", "secure"),
    [("https", "auto", True), ("http", "auto", False), ("http", "always", True), ("https", "never", False)],
)
def test_session_cookie_is_secure_over_https(scheme, policy, secure):
    from spinal_edge.web.session_auth import cookie_is_secure
    from starlette.requests import Request

    request = Request(
        {"type": "http", "scheme": scheme, "server": ("device", 443), "path": "/", "headers": []}
    )
    assert cookie_is_secure(request, policy) is secure

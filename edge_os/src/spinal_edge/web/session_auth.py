"""The setup page's side of the device API's auth gate: the session cookie as a credential, and its CSRF check.

`mount_setup_page` adds `SessionAuth` to `app.state.auth` and installs `check_session_csrf` as the gate's CSRF
check, so every `/api/...` route accepts a bearer token (no CSRF) or a logged-in browser (CSRF enforced).
"""

from __future__ import annotations

from fastapi import HTTPException, Request, status
from starlette.responses import Response

from spinal_edge.api.auth import Principal
from spinal_edge.web.csrf import CSRF_HEADER, check_csrf_token, check_same_origin
from spinal_edge.web.errors import CsrfRejected
from spinal_edge.web.sessions import BrowserSession, SessionStore

SESSION_COOKIE = "spinal_session"


def session_of(request: Request) -> BrowserSession | None:
    """The request's live session (anonymous or logged in), or None."""
    store: SessionStore = request.app.state.web.sessions
    return store.get(request.cookies.get(SESSION_COOKIE))


class SessionAuth:
    """Authenticator for the gate: a logged-in session cookie is a principal that needs CSRF protection."""

    def authenticate(self, request: Request) -> Principal | None:
        session = session_of(request)
        if session is None or not session.authenticated:
            return None
        request.state.browser_session = session
        return Principal(name="admin", method="session", csrf_exempt=False)


def check_session_csrf(request: Request, principal: Principal) -> None:
    """The gate's CSRF check for session principals: same origin, and the session's token in X-CSRF-Token."""
    session: BrowserSession | None = getattr(request.state, "browser_session", None) or session_of(request)
    try:
        if session is None:
            raise CsrfRejected("The session ended; log in again.")
        check_same_origin(request.headers, request.headers.get("host", ""))
        check_csrf_token(session, request.headers.get(CSRF_HEADER))
    except CsrfRejected as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None


def cookie_is_secure(request: Request, policy: str) -> bool:
    """Whether the session cookie gets the Secure flag: "auto" sets it whenever the page is reached over HTTPS.
    Over plain HTTP (a device on the LAN before TLS is set up) a Secure cookie would never come back (see docs)."""
    if policy in ("always", "never"):
        return policy == "always"
    return request.url.scheme == "https"


def set_session_cookie(
    response: Response, request: Request, session: BrowserSession, *, policy: str, max_age: int
) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        max_age=max_age,
        path="/",
        secure=cookie_is_secure(request, policy),
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")

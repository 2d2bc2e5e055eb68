"""First-boot setup (setup code -> admin password), login, logout and password change.

Server-rendered forms that work without JavaScript; every POST carries the session's CSRF token.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from spinal_edge.web.csrf import CSRF_FORM_FIELD, check_csrf_token, check_same_origin
from spinal_edge.web.errors import (
    AccountFileError,
    CsrfRejected,
    FormError,
    LoginThrottled,
    PasswordPolicyError,
    SetupCodeError,
)
from spinal_edge.web.forms import read_form
from spinal_edge.web.rendering import render
from spinal_edge.web.session_auth import clear_session_cookie, session_of, set_session_cookie
from spinal_edge.web.sessions import BrowserSession
from spinal_edge.web.state import SetupPageState

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def _web(request: Request) -> SetupPageState:
    return request.app.state.web


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _anonymous(request: Request) -> tuple[BrowserSession, bool]:
    """The browser's session, or a new anonymous one (True when the cookie must be set)."""
    session = session_of(request)
    if session is not None:
        return session, False
    return _web(request).sessions.new_anonymous(_client(request)), True


def _form_page(
    request: Request, template: str, *, error: str = "", status_code: int = 200, **extra: object
) -> Response:
    session, new = _anonymous(request)
    response = render(request, template, session=session, error=error, status_code=status_code, **extra)
    if new:
        web = _web(request)
        set_session_cookie(response, request, session, policy=web.settings.cookie_secure, max_age=3600)
    return response


def _login_session(request: Request, previous: BrowserSession | None) -> Response:
    web = _web(request)
    session = web.sessions.login(previous, _client(request))
    response = RedirectResponse("/status", status_code=303)
    max_age = web.settings.session_max_hours * 3600
    set_session_cookie(response, request, session, policy=web.settings.cookie_secure, max_age=max_age)
    return response


async def _checked_form(request: Request, *fields: str) -> tuple[BrowserSession, dict[str, str]]:
    """Read a form and check its origin and CSRF token against the browser's session."""
    form = await read_form(request, CSRF_FORM_FIELD, *fields)
    session = session_of(request)
    if session is None:
        raise CsrfRejected("Your browser did not keep this page's cookie; allow cookies and reload the page.")
    check_same_origin(request.headers, request.headers.get("host", ""))
    check_csrf_token(session, form[CSRF_FORM_FIELD])
    return session, form


@router.get("/setup")
def setup_form(request: Request) -> Response:
    if _web(request).account.is_set():
        return RedirectResponse("/login", status_code=303)
    return _form_page(request, "setup.html")


@router.post("/setup")
async def setup_submit(request: Request) -> Response:
    web = _web(request)
    if web.account.is_set():
        return RedirectResponse("/login", status_code=303)
    client = _client(request)
    try:
        session, form = await _checked_form(request, "setup_code", "password", "confirm")
        web.setup_throttle.check(client)
        try:
            web.setup_code.check(form["setup_code"])
        except SetupCodeError:
            web.setup_throttle.failed(client)
            web.counters["setup_code_failed"] += 1
            raise
        web.account.set_password(form["password"], form["confirm"])
    except LoginThrottled as exc:
        return _form_page(request, "setup.html", error=str(exc), status_code=429)
    except CsrfRejected as exc:
        web.counters["csrf_refused"] += 1
        return _form_page(request, "setup.html", error=str(exc), status_code=403)
    except (FormError, SetupCodeError, PasswordPolicyError) as exc:
        return _form_page(request, "setup.html", error=str(exc), status_code=400)
    web.setup_throttle.succeeded(client)
    log.info("admin password set with the setup code", extra={"client": client})
    return _login_session(request, session)


@router.get("/login")
def login_form(request: Request) -> Response:
    web = _web(request)
    if not web.account.is_set():
        return RedirectResponse("/setup", status_code=303)
    session = session_of(request)
    if session is not None and session.authenticated:
        return RedirectResponse("/status", status_code=303)
    return _form_page(request, "login.html")


@router.post("/login")
async def login_submit(request: Request) -> Response:
    web = _web(request)
    client = _client(request)
    try:
        session, form = await _checked_form(request, "password")
        web.login_throttle.check(client)
        if not web.account.verify(form["password"]):
            web.login_throttle.failed(client)
            web.counters["login_failed"] += 1
            log.warning("failed login", extra={"client": client})
            return _form_page(
                request, "login.html", error="That password is wrong; try again.", status_code=401
            )
    except LoginThrottled as exc:
        response = _form_page(request, "login.html", error=str(exc), status_code=429)
        response.headers["Retry-After"] = str(int(exc.retry_after_s) + 1)
        return response
    except CsrfRejected as exc:
        web.counters["csrf_refused"] += 1
        return _form_page(request, "login.html", error=str(exc), status_code=403)
    except (FormError, AccountFileError) as exc:
        return _form_page(request, "login.html", error=str(exc), status_code=400)
    web.login_throttle.succeeded(client)
    return _login_session(request, session)


@router.post("/logout")
async def logout(request: Request) -> Response:
    web = _web(request)
    try:
        session, _ = await _checked_form(request)
    except (CsrfRejected, FormError):
        return RedirectResponse("/login", status_code=303)
    web.sessions.logout(session.id)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


@router.post("/account/password")
async def change_password(request: Request) -> Response:
    web = _web(request)
    client = _client(request)
    try:
        session, form = await _checked_form(request, "current", "password", "confirm")
        if not session.authenticated:
            return RedirectResponse("/login", status_code=303)
        web.login_throttle.check(client)
        if not web.account.verify(form["current"]):
            web.login_throttle.failed(client)
            raise PasswordPolicyError("The current password is wrong; type the password you log in with.")
        web.account.set_password(form["password"], form["confirm"])
    except (CsrfRejected, FormError, PasswordPolicyError, LoginThrottled, AccountFileError) as exc:
        code = 429 if isinstance(exc, LoginThrottled) else 403 if isinstance(exc, CsrfRejected) else 400
        return render(request, "account.html", session=session_of(request), error=str(exc), status_code=code)
    web.sessions.revoke_all(keep=session.id)
    return render(
        request, "account.html", session=session, notice="Password changed; other sessions were logged out."
    )

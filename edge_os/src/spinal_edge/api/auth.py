"""Who may call the device API: a bearer token today, and any other authenticator the setup page registers.

`create_app` installs an `AuthGate` with `BearerTokenAuth`; issue 9's session login adds its own authenticator
and a CSRF check to the same gate, so every protected route accepts either without being rewritten.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from spinal.fsutil import write_text_atomic

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `csrf_exempt`: its credential is never sent by a browser on its own (bearer)."""

    name: str
    method: str
    csrf_exempt: bool


class Authenticator(Protocol):
    """Recognises a caller from a request (header, cookie ...), or returns None to let the next one try."""

    def authenticate(self, request: Request) -> Principal | None: ...


CsrfCheck = Callable[[Request, Principal], None]
"""Raises HTTPException(403) when a state-changing request from a browser session lacks a valid CSRF token."""


class BearerTokenAuth:
    """`Authorization: Bearer <token>`, compared in constant time."""

    def __init__(self, token: str) -> None:
        if len(token) < 16:
            raise ValueError("the API token must be at least 16 characters")
        self._token = token.encode()

    def authenticate(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return None
        if hmac.compare_digest(value.strip().encode(), self._token):
            return Principal(name="api-token", method="bearer", csrf_exempt=True)
        return None


class AuthGate:
    """The one dependency every protected route uses: the first authenticator that knows the caller wins."""

    def __init__(self, authenticators: list[Authenticator] | None = None) -> None:
        self.authenticators: list[Authenticator] = list(authenticators or [])
        self.csrf_check: CsrfCheck | None = None
        self.refused = 0

    def add(self, authenticator: Authenticator) -> None:
        self.authenticators.append(authenticator)

    def authenticate(self, request: Request) -> Principal:
        for authenticator in self.authenticators:
            principal = authenticator.authenticate(request)
            if principal is not None:
                if request.method not in _SAFE_METHODS and not principal.csrf_exempt:
                    if self.csrf_check is None:
                        raise HTTPException(status.HTTP_403_FORBIDDEN, "this request needs a CSRF token")
                    self.csrf_check(request, principal)
                return principal
        self.refused += 1
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this endpoint needs the device API token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


# Declared so the OpenAPI schema publishes the bearer scheme; the gate does the checking.
_bearer_scheme = HTTPBearer(auto_error=False, description="The device API token (see `spinal-edge token`).")


def require_principal(
    request: Request, _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer_scheme)
) -> Principal:
    """FastAPI dependency: the caller, or 401/403."""
    gate: AuthGate = request.app.state.auth
    return gate.authenticate(request)


def load_or_create_token(path: Path) -> str:
    """The token in `path`, or a new random one written there with mode 0600 (first start, or a file left
    empty)."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    # Atomic: a power cut during the first start leaves no file or a whole one, never an empty token file.
    write_text_atomic(path, token + "\n", mode=0o600, make_parents=True)
    return token

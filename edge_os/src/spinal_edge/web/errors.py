"""The setup page's error tree: one base class, one subclass per kind of refusal.

Raised by the account, setup-code, session, CSRF, throttle and TLS modules; the page routes map them to HTTP codes.
"""

from __future__ import annotations


class WebError(Exception):
    """Base class of every error the setup page raises on purpose; the message is one sentence for a person."""


class PasswordPolicyError(WebError):
    """A new admin password is too short, too long or does not match its confirmation."""


class AccountFileError(WebError):
    """The stored admin account is unreadable; the page stays locked until it is repaired or reset."""


class SetupCodeError(WebError):
    """The setup code is missing, malformed, or the one typed does not match."""


class NotAuthenticated(WebError):
    """The request carries neither a valid session nor a valid API token."""


class CsrfRejected(WebError):
    """A state-changing request came without the session's CSRF token, or from another site."""


class LoginThrottled(WebError):
    """Too many failed attempts; the caller must wait `retry_after_s` seconds."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TlsBundleError(WebError):
    """An uploaded certificate, CA or key does not parse, is too large, or the key does not match."""


class FormError(WebError):
    """A submitted form is malformed: too large, not URL-encoded, or missing a field."""

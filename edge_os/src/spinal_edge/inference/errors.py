"""The error tree of the edge inference client; callers catch `InferenceError`.

Raised by engine construction and `start()`; `get_action()` and `notify_observation()` never raise.
"""

from __future__ import annotations


class InferenceError(Exception):
    """Something about remote or local inference went wrong; the message names the thing and the fix."""


class InferenceConfigError(InferenceError, ValueError):
    """The inference configuration or the robot description is invalid (a field and the fix are named)."""


class ServerUnavailable(InferenceError):
    """No policy server answered the status or session query in time (retried with backoff)."""


class SessionRefused(InferenceError):
    """The server answered but refused to open a session (full, incompatible schema, pinned task ...)."""


class ContractViolation(InferenceError):
    """The server serves a different model or action layout than this robot needs; executing it is unsafe."""


class RequestFailed(InferenceError):
    """One observation went unanswered: its chunk did not arrive within `request_timeout_s`, or sending failed."""


class LinkLost(InferenceError):
    """The session to the server is gone (liveliness dropped, drain notice, or the transport closed)."""


class LocalBackendUnavailable(InferenceError):
    """The local engine needs the optional `spinal-server` package (the edge's `local` extra)."""

"""CSRF defence for cookie-authenticated requests: a per-session token plus a same-origin check.

Used by the auth dependency on every state-changing request that rides on the session cookie.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

from spinal_edge.web.errors import CsrfRejected
from spinal_edge.web.sessions import BrowserSession

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FORM_FIELD = "csrf_token"


def check_same_origin(headers: Mapping[str, str], host: str) -> None:
    """Refuse requests a browser marks as coming from another site (Sec-Fetch-Site, Origin, Referer)."""
    fetch_site = headers.get("sec-fetch-site", "")
    if fetch_site == "cross-site":
        raise CsrfRejected("This request came from another web site; use the device's own page.")
    source = headers.get("origin") or headers.get("referer") or ""
    if source and source != "null":
        source_host = urlsplit(source).netloc.lower()
        if source_host != host.lower():
            raise CsrfRejected("This request came from another origin; use the device's own page.")
    elif source == "null":
        raise CsrfRejected("This request came from an opaque origin; use the device's own page.")


def check_csrf_token(session: BrowserSession, submitted: str | None) -> None:
    """Raise CsrfRejected unless `submitted` is the session's token (constant-time compare)."""
    if not submitted or not hmac.compare_digest(submitted.encode(), session.csrf_token.encode()):
        raise CsrfRejected(
            "The form is missing its security token or it is stale; reload the page and retry."
        )

"""Reading small URL-encoded forms (login, setup, password change) without a multipart parser.

Used by the account routes; bodies are size-limited and every field is a single string.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

from spinal_edge.web.errors import FormError

MAX_FORM_BYTES = 16 * 1024


async def read_form(request: Request, *fields: str) -> dict[str, str]:
    """The named fields of an `application/x-www-form-urlencoded` body ('' when absent); FormError otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise FormError("The form was not sent as a web form; reload the page and submit it again.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError("The form is too large; shorten what you typed.")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError("The form could not be read; reload the page and submit it again.") from exc
    return {name: (parsed.get(name) or [""])[0] for name in fields}

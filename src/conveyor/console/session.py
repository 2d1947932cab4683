"""The browser's side of the console: the key cookie, the CSRF token, and the form body.

The key a user logs in with is kept in an HttpOnly, SameSite=Strict cookie scoped to ``/ui``
(never in local storage or a URL), so page scripts cannot read it and other sites cannot make
the browser send it. Every state-changing form also carries a per-session CSRF token: a random
value kept in its own cookie and repeated in the form (double submit), compared server-side in
constant time. A new token is drawn at each login, so a token seen before login is worthless
after it. The token lives in a cookie rather than in server memory so that any of several API
processes behind a load balancer can check it.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from fastapi import Request, Response

from conveyor.api.auth import CookieKey
from conveyor.errors import Forbidden

PREFIX = "/ui"
KEY_COOKIE = CookieKey(PREFIX, "conveyor_key")
CSRF_COOKIE = "conveyor_csrf"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 65_536  # a console form: a key, filters, or a page of checked ids


def csrf_token(request: Request) -> str:
    """This browser's token: the one its cookie holds, or a new one (``remember`` sets it)."""
    token = getattr(request.state, "csrf", None)
    if token is None:
        token = request.cookies.get(CSRF_COOKIE) or ""
        if len(token) < 32:
            token = secrets.token_urlsafe(32)
            request.state.csrf_new = True
        request.state.csrf = token
    return str(token)


def new_csrf(request: Request) -> str:
    """Draw a fresh token (at login), so none seen before carries over."""
    request.state.csrf = secrets.token_urlsafe(32)
    request.state.csrf_new = True
    return str(request.state.csrf)


def remember(request: Request, response: Response) -> None:
    """Set the CSRF cookie on ``response`` if this request drew a new token."""
    if getattr(request.state, "csrf_new", False):
        _set(request, response, CSRF_COOKIE, request.state.csrf)


def keep_key(request: Request, response: Response, token: str) -> None:
    _set(request, response, KEY_COOKIE.name, token)


def drop_key(response: Response) -> None:
    response.delete_cookie(KEY_COOKIE.name, path=PREFIX, httponly=True, samesite="strict")


def _set(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name, value, path=PREFIX, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )


class Form(dict[str, str]):
    """A form's fields, the first value of each name; ``every`` gives all values of a name
    (the checked boxes of a list)."""

    def __init__(self, values: dict[str, list[str]]) -> None:
        super().__init__({k: v[0] for k, v in values.items()})
        self._values = values

    def every(self, name: str) -> list[str]:
        return list(self._values.get(name, []))


async def checked_form(request: Request) -> Form:
    """The form body (URL-encoded), refused with 403 unless it carries this browser's CSRF
    token. Called only after the caller's key was checked, so a stranger's body is never
    read."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Forbidden(f"a console form is at most {MAX_FORM_BYTES} bytes")
    fields = Form(parse_qs(body.decode("utf-8", "replace")))
    sent = fields.get(CSRF_FIELD, "") or request.headers.get("x-csrf-token", "")
    held = request.cookies.get(CSRF_COOKIE, "")
    if not held or not secrets.compare_digest(sent.encode(), held.encode()):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page and retry")
    return fields

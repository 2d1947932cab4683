"""Rendering: the Jinja2 environment, who is looking, and what they may do.

Autoescaping is on for every template, so a payload, an error, a metadata value or a task type
holding ``<script>`` is shown as text; the pages also carry a Content-Security-Policy that runs
only scripts served from ``/ui/static`` (no inline script, no eval), a second wall should an
escape ever be missed. Every page is rendered for one ``Principal``: its reads go through the
same store calls as the API's, filtered by ``principal.sees``.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from conveyor.api.auth import PRINCIPAL
from conveyor.api.tenancy import check_fleet
from conveyor.apikeys import Principal, Scope
from conveyor.console import session
from conveyor.console.nav import NAV
from conveyor.errors import ConveyorError, Forbidden, Unauthorized
from conveyor.operations import Operations
from conveyor.service import TaskService

HERE = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'; object-src 'none'")


def when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def span(seconds: float | None) -> str:
    """A duration as people read it: 850 ms, 12.3 s, 4 min 5 s, 3 h 2 min."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


ENV = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True, lstrip_blocks=True,
)
ENV.filters.update(when=when, span=span, pretty=pretty)


class LoginNeeded(Exception):
    """No valid key in the cookie: the page answers with the login form instead."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller of a console page and what its key lets it do there."""

    principal: Principal
    request: Request

    @property
    def sees(self) -> str | None:
        return self.principal.sees

    @property
    def can_act(self) -> bool:
        """Cancel, retry, re-prioritise tasks (the API's ``submit`` scope)."""
        return self.principal.scope >= Scope.SUBMIT

    @property
    def can_steer(self) -> bool:
        """Pause and resume queues: every tenant's work, so as on the API an admin of the
        default tenant or a caller spanning tenants."""
        if self.principal.scope < Scope.ADMIN:
            return False
        try:
            check_fleet(self.principal, "pausing")
        except Forbidden:
            return False
        return True

    def need(self, allowed: bool, what: str) -> None:
        if not allowed:
            raise Forbidden(f"your API key ({self.principal.scope.label}) may not {what}")

    @property
    def service(self) -> TaskService:
        found: TaskService = self.request.app.state.service
        return found

    @property
    def operations(self) -> Operations:
        found: Operations = self.request.app.state.operations
        return found

    def render(self, name: str, code: int = 200, **context: Any) -> HTMLResponse:
        return render(self.request, name, code, viewer=self, **context)


async def viewer(request: Request) -> Viewer:
    found: Principal | ConveyorError = getattr(request.state, PRINCIPAL)
    if isinstance(found, Unauthorized):
        raise LoginNeeded
    if isinstance(found, ConveyorError):
        raise found
    return Viewer(found, request)


Viewing = Annotated[Viewer, Depends(viewer)]


def render(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
    """One page or fragment, with the CSRF token, the navigation and the security headers."""
    token = session.csrf_token(request)
    html = ENV.get_template(name).render(
        csrf=token, csrf_field=session.CSRF_FIELD, nav=NAV, path=request.url.path,
        now=time.time(), prefix=request.scope.get("root_path", "") + session.PREFIX, **context,
    )
    response = HTMLResponse(html, status_code=code)
    secure(response)
    session.remember(request, response)
    return response


def secure(response: HTMLResponse) -> None:
    response.headers["content-security-policy"] = CSP
    response.headers["x-content-type-options"] = "nosniff"
    response.headers["referrer-policy"] = "same-origin"
    response.headers["cache-control"] = "no-store"

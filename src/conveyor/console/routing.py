"""Console routes answer in HTML, errors included: a ``ConveyorError`` becomes an error page
with the API's status code and message, a missing key the login form (or, for an htmx
fragment, an ``HX-Redirect`` to it)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from conveyor.api.errors import STATUS
from conveyor.console import session
from conveyor.console.views import LoginNeeded, render
from conveyor.errors import BackendUnavailable, ConveyorError

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def status_of(exc: ConveyorError) -> int:
    if isinstance(exc, BackendUnavailable):
        return 503
    return next((code for kind, code, _ in STATUS if isinstance(exc, kind)), 500)


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await inner(request)
            except LoginNeeded:
                login = request.scope.get("root_path", "") + session.PREFIX + "/login"
                if request.headers.get("hx-request"):
                    return Response(status_code=204, headers={"HX-Redirect": login})
                return RedirectResponse(login, status_code=303)
            except ConveyorError as exc:
                status = status_of(exc)
                return render(request, "error.html", status, status=status, message=str(exc))

        return handler


def back(fields: dict[str, str], default: str) -> str:
    """Where a form's ``next`` field says to go after it: a console path only (never another
    site: ``//evil.example`` or ``/ui/../x`` fall back to ``default``)."""
    wanted = fields.get("next", "")
    ok = (wanted.startswith(session.PREFIX + "/") or wanted == session.PREFIX) and not any(
        bad in wanted for bad in ("//", "\\", "..", "\r", "\n"))
    return wanted if ok else default

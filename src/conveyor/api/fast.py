"""The create routes served past Starlette's router: the API's hot path (issue 17).

Between the innermost middleware and a route's handler, Starlette and FastAPI put the exception
middleware, FastAPI's exit-stack middleware, the router's scan of the routes, the included
router's dispatch and the route's own wrapper with two more exit stacks; with fifty clients
creating at once those layers cost the API a quarter of its CPU. ``FastLane``, the innermost
middleware, hands a request that a ``lean.LeanRoute`` matches fully straight to that route's
handler, with the scope the router would have given it (``endpoint``, ``path_params``,
``route``) and the application's exception handlers applied by Starlette's own
``wrap_app_handling_exceptions``, as the route's wrapper applies them. The create routes are
the first the application includes, so the router would have picked the same route; any other
request goes on to the router. The middlewares outside (guard, key, body limit, metrics,
traces) see both kinds of request alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.api.lean import LeanRoute

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class FastLane:
    """Pure ASGI middleware; ``routes``: a router's routes, of which the ``LeanRoute``s are
    served here; ``handlers``: the application's ``exception_handlers``, read at the first
    request (``errors.install`` fills them after the middleware is added)."""

    def __init__(
        self, app: ASGIApp, routes: Sequence[BaseRoute], handlers: Mapping[Any, Any]
    ) -> None:
        self.app = app
        self._lean: list[tuple[LeanRoute, Handler]] = [
            (r, r.get_route_handler()) for r in routes if isinstance(r, LeanRoute)
        ]
        self._handlers = handlers

    @functools.cached_property
    def _exception_handlers(self) -> tuple[dict[Any, Any], dict[Any, Any]]:
        """By exception class and by status code, as Starlette hands them to its exception
        middleware: without the 500 / ``Exception`` handler, which the outermost middleware
        applies to whatever no other handler takes."""
        handlers = {k: v for k, v in self._handlers.items() if k not in (500, Exception)}
        by_class = {k: v for k, v in handlers.items() if isinstance(k, type)}
        by_status = {k: v for k, v in handlers.items() if isinstance(k, int)}
        return by_class, by_status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for route, handler in self._lean:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    scope["starlette.exception_handlers"] = self._exception_handlers
                    request = Request(scope, receive, send)
                    await wrap_app_handling_exceptions(_answer(handler, request), request)(
                        scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _answer(handler: Handler, request: Request) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await handler(request)
        await response(scope, receive, send)

    return app

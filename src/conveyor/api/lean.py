"""Routes served without FastAPI's generic request solver: the two create routes, the API's
hot path (issue 17).

FastAPI resolves a route's parameters anew on every request: each level of the dependency
tree (the scope check, the caller, the bearer scheme) reads the path, query, header and cookie
parameters again and builds its cache keys, which cost a create more CPU than its body's
validation. A ``LeanRoute`` keeps its endpoint's signature (so the OpenAPI schema, the docs and
the security scheme are what any route gets) but is served by ``serve``, which does the same
work for that one shape of endpoint, ``(body, request, principal, tenant)``, in the order
FastAPI does it: the JSON is parsed first, then the caller is checked (``require``), then the
``tenant`` query parameter and the body are validated together, any error answered as FastAPI
answers it (``RequestValidationError``, the 422 of ``errors``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pydantic
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from conveyor.api.auth import authenticate, require
from conveyor.api.tenancy import TENANT_TEXT
from conveyor.apikeys import Principal, Scope

Endpoint = Callable[[Any, Request, Principal, str | None], Awaitable[Response]]
_TENANT = pydantic.TypeAdapter(TENANT_TEXT)


@dataclass(frozen=True, slots=True)
class Lean:
    """What ``serve`` needs to know of an endpoint: its body's model and the scope it needs."""

    body: type[pydantic.BaseModel]
    scope: Scope


_LEAN: dict[Callable[..., Any], Lean] = {}


def lean(body: type[pydantic.BaseModel], scope: Scope) -> Callable[[Endpoint], Endpoint]:
    """Mark an endpoint of a ``LeanRoute`` router (put it under the route decorator)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        _LEAN[endpoint] = Lean(body, scope)
        return endpoint

    return mark


class LeanRoute(APIRoute):
    """An ``APIRoute`` whose requests are served by ``serve`` (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        try:
            spec = _LEAN[self.endpoint]
        except KeyError:
            raise TypeError(f"{self.path}: a LeanRoute's endpoint needs @lean") from None
        return serve(self.endpoint, spec)


def serve(
    endpoint: Endpoint, spec: Lean
) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    allowed = require(spec.scope)

    async def handler(request: Request) -> Response:
        data = parsed(await request.body())
        who = await allowed(await authenticate(request, None))
        problems: list[Any] = []
        tenant = _tenant(request.query_params.get("tenant"), problems)
        try:
            body = spec.body.model_validate(data)
        except pydantic.ValidationError as exc:
            problems.extend(located(exc, "body"))
        if problems:
            raise RequestValidationError(problems, body=data)
        return await endpoint(body, request, who, tenant)

    return handler


def parsed(raw: bytes) -> Any:
    """The body as FastAPI reads it: ``json.loads``, whose error text the 422 carries (orjson
    would differ: it reads integers past 64 bits as floats, and refuses NaN)."""
    if not raw:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{
            "type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
            "input": {}, "ctx": {"error": exc.msg},
        }]) from None


def _tenant(value: str | None, problems: list[Any]) -> str | None:
    if value is None:
        return None
    try:
        return _TENANT.validate_python(value)
    except pydantic.ValidationError as exc:
        problems.extend(located(exc, "query", "tenant"))
        return None


def located(exc: pydantic.ValidationError, *where: str | int) -> list[Any]:
    """The errors of ``exc`` placed where FastAPI places them (``("body", "task_type")``)."""
    return [{**e, "loc": (*where, *e["loc"])} for e in exc.errors(include_url=False)]

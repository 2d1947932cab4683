"""One table from Conveyor's exceptions to HTTP answers; every error body is
``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from conveyor import errors

log = logging.getLogger(__name__)

STATUS: list[tuple[type[errors.ConveyorError], int, str]] = [
    (errors.ValidationError, 422, "invalid"),
    (errors.NotFound, 404, "not_found"),
    (errors.Conflict, 409, "conflict"),
    (errors.Unauthorized, 401, "unauthorized"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.ConfigError, 422, "invalid"),
]


def error_response(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        if error.get("type") == "json_invalid":
            return f"the body is not valid JSON: {error.get('ctx', {}).get('error', '')}".strip()
        parts.append(f"{loc}: {error.get('msg')}")
    return "; ".join(parts)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    """A database or Redis connection dropped mid-request (each backend converts its driver's
    errors into ``BackendUnavailable`` at its boundary): nothing was acknowledged, so the
    client may retry (creates are safe to retry with an idempotency key)."""
    log.warning("backend unavailable on %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "unavailable", "the store or the coordination backend is "
                          "unavailable; retry shortly")


async def _too_many(request: Request, exc: Exception) -> JSONResponse:
    """A tenant's quota refused the request: 429 with ``Retry-After`` in whole seconds."""
    assert isinstance(exc, errors.TooManyRequests)
    response = error_response(429, "quota", str(exc))
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.ConveyorError)
    async def _conveyor(request: Request, exc: errors.ConveyorError) -> JSONResponse:
        for kind, status, code in STATUS:
            if isinstance(exc, kind):
                return error_response(status, code, str(exc))
        log.error("unmapped error on %s: %r", request.url.path, exc)
        return error_response(500, "internal", str(exc))

    # More specific than ConveyorError, so Starlette picks these for their kinds.
    app.add_exception_handler(errors.BackendUnavailable, _unavailable)
    app.add_exception_handler(errors.TooManyRequests, _too_many)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid", _describe_validation(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail))

"""The ``http`` executor: one attempt of a task is one HTTP call to a business service.

Request: ``executor_config`` names ``url`` (required), ``method`` (default ``POST``),
``headers`` and ``timeout_seconds``; the body is JSON ``{"task_id", "attempt", "task_type",
"payload"}`` and the ``Idempotency-Key: {task_id}:{attempt}`` header lets the service drop a
repeated delivery (delivery is at least once, docs/design.md §4). With tracing on, a W3C
``traceparent`` header names the attempt's executor span, so the service's spans join the
task's trace (``observability.tracing``).

Response contract, in the order it is applied:

* 2xx with a JSON object holding a boolean ``success``: ``true`` returns ``data``; ``false``
  raises ``RetryableError`` when the object says ``"retryable": true`` and ``PermanentError``
  otherwise. A service that reports a business failure without asking for a retry has decided
  the outcome; retrying on its behalf would repeat a side effect it chose not to complete.
* any other 2xx: success, with the JSON body (or its text, or ``None`` when empty) as result.
* 429, 408 and 5xx: ``RetryableError``; other statuses: ``PermanentError``. In both cases a
  JSON body with a boolean ``retryable`` overrides the default, because the service knows
  better than its status line (a 400 for "resource locked, try later", a 500 for "bad input").
* connection errors and httpx timeouts: ``RetryableError``.

The task timeout bounds the whole call: the worker runs ``execute`` under ``asyncio.wait_for``
and cancels it, which aborts the request and closes its connection (httpcore discards a
connection whose exchange was interrupted). ``timeout_seconds`` (capped at the task timeout)
is httpx's per-phase timeout on top of that.

Calls go through ``outbound``, which checks every address and redirect.

Every value of ``headers`` is secret (``SECRET_FIELDS``): stored sealed, shown as ``"***"``
(``conveyor.sealing``); this executor receives them opened.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from conveyor.config import Settings
from conveyor.errors import PermanentError, RetryableError
from conveyor.executors.netguard import Allowlist
from conveyor.executors.outbound import Outbound, build_client, merge_headers, send_checked
from conveyor.models import Task
from conveyor.observability import tracing

RETRYABLE_STATUSES = frozenset({408, 429})
ALLOWED_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
SECRET_FIELDS = ("headers.*",)


def decode_body(content: bytes) -> Any:
    """The body as JSON when it parses, else as text; ``None`` when empty."""
    if not content.strip():
        return None
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", errors="replace")


def _describe(value: Any, default: str) -> str:
    if value is None or value == "":
        return default
    return value if isinstance(value, str) else json.dumps(value, default=str)


def interpret(status: int, content: bytes) -> Any:
    """Apply the response contract (module docstring): return the result or raise."""
    body = decode_body(content)
    if 200 <= status < 300:
        if isinstance(body, dict) and isinstance(body.get("success"), bool):
            if body["success"]:
                return body.get("data")
            error = _describe(body.get("error"), "the service reported a failure")
            if body.get("retryable") is True:
                raise RetryableError(error)
            raise PermanentError(error)
        return body
    retryable = status in RETRYABLE_STATUSES or status >= 500
    detail = body
    if isinstance(body, dict):
        if isinstance(body.get("retryable"), bool):
            retryable = body["retryable"]
        detail = body.get("error", body)
    message = f"HTTP {status}: {_describe(detail, 'no body')[:500]}"
    raise RetryableError(message) if retryable else PermanentError(message)


def string_map(config: Mapping[str, Any], name: str) -> dict[str, str]:
    """``executor_config[name]``, a map of strings to strings (headers, gRPC metadata)."""
    found = config.get(name) or {}
    if not isinstance(found, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in found.items()
    ):
        raise PermanentError(f"executor_config.{name} must map strings to strings")
    return dict(found)


def check_no_credentials(url: str) -> None:
    """A password in the URL would be stored and shown in the clear: headers are sealed."""
    if httpx.URL(url).password:
        raise PermanentError(
            "executor_config.url must not carry a password (user:password@host); send it in "
            "executor_config.headers (Authorization), which are stored encrypted"
        )


def parse_config(task: Task, config: Mapping[str, Any]) -> Outbound:
    """Read ``executor_config`` into an ``Outbound``; a bad config fails the task for good."""
    url = config.get("url")
    if not isinstance(url, str) or not url:
        raise PermanentError(f"task type {task.task_type!r}: executor_config.url is required")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise PermanentError(f"executor_config.url {url!r} is invalid: {exc}") from exc
    method = str(config.get("method", "POST")).upper()
    if method not in ALLOWED_METHODS:
        raise PermanentError(f"executor_config.method {method!r} is not one of {ALLOWED_METHODS}")
    headers = string_map(config, "headers")
    timeout = config.get("timeout_seconds", task.timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise PermanentError("executor_config.timeout_seconds must be a positive number")
    return Outbound(method, parsed, headers, None, float(min(timeout, task.timeout)))


class HttpExecutor:
    """Runs tasks by calling a business service over HTTP, one shared pool per worker."""

    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        # ``transport`` is for tests that must prove no byte leaves the process.
        self._transport = transport
        self._allowlist = Allowlist.parse(settings.http_executor.allowed_hosts)
        self._max_connections = settings.http_executor.max_connections
        self._max_bytes = settings.max_body_bytes
        self._client: httpx.AsyncClient | None = None

    def _pool(self) -> httpx.AsyncClient:
        # Created on first use so that building an executor needs no event loop.
        if self._client is None:
            self._client = build_client(self._max_connections, self._transport)
        return self._client

    async def execute(self, task: Task, config: Mapping[str, Any]) -> Any:
        call = parse_config(task, config)
        body = json.dumps(
            {
                "task_id": task.id,
                "attempt": task.attempt,
                "task_type": task.task_type,
                "payload": task.payload,
            }
        ).encode()
        headers = merge_headers(
            call.headers,
            {"Content-Type": "application/json", "Idempotency-Key": f"{task.id}:{task.attempt}",
             **tracing.outgoing()},  # traceparent: the service's spans join the task's trace
        )
        request = replace(call, headers=headers, content=body)
        reply = await send_checked(
            self._pool(), request, self._allowlist, max_bytes=self._max_bytes
        )
        return interpret(reply.status_code, reply.content)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

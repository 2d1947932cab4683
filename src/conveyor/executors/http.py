"""The ``http`` executor: one attempt of a task is one HTTP call to a business service.

Request: ``executor_config`` names ``url`` (required), ``method`` (default ``POST``),
``headers`` and ``timeout_seconds``; the body is JSON ``{"task_id", "attempt", "task_type",
"payload"}`` and the ``Idempotency-Key: {task_id}:{attempt}`` header lets the service drop a
repeated delivery (delivery is at least once, DESIGN.md §4).

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

Address safety (DESIGN.md §8.10): every hop is checked by ``netguard`` before it is sent.
Redirects are never followed by httpx; up to ``MAX_REDIRECTS`` are followed here, each target
checked again. Plain ``http`` requests are sent to the very IP address that was checked (with
the original ``Host`` header), so DNS rebinding between check and connect cannot redirect
them; ``https`` keeps the name, and certificate verification binds the peer to it. The client
ignores proxy environment variables (a proxy would reach addresses the guard never sees) and
keeps no cookies (one pool serves every task and tenant).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import httpx

from conveyor.config import Settings
from conveyor.errors import PermanentError, RetryableError
from conveyor.executors.netguard import Allowlist, resolve_checked
from conveyor.models import Task

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRYABLE_STATUSES = frozenset({408, 429})
ALLOWED_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_CROSS_ORIGIN_DROPPED = ("authorization", "cookie", "proxy-authorization")
_USER_AGENT = "conveyor-http-executor"
_MAX_ADDRESSES = 4


@dataclass(frozen=True, slots=True)
class Outbound:
    """One request as the caller meant it, before address pinning and redirects."""

    method: str
    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class Reply:
    """The final response after redirects: status and the (size-capped) body."""

    status_code: int
    content: bytes


def build_client(
    max_connections: int = 100, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An ``AsyncClient`` fit for calls made on behalf of tasks (see the module docstring)."""
    client = httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=min(max_connections, 20),
        ),
        headers={"User-Agent": _USER_AGENT},
    )
    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return client


async def send_checked(
    client: httpx.AsyncClient,
    request: Outbound,
    allowlist: Allowlist,
    *,
    max_bytes: int,
    max_redirects: int = MAX_REDIRECTS,
) -> Reply:
    """Send ``request``, following up to ``max_redirects`` redirects, checking every hop.

    Transport failures become ``RetryableError``; a refused address or a malformed URL
    ``PermanentError``. HTTP error statuses are returned, not raised: the caller decides.
    """
    for hop in range(max_redirects + 1):
        status, location, content = await _send_once(client, request, allowlist, max_bytes)
        if status not in REDIRECT_STATUSES or location is None:
            return Reply(status, content)
        if hop == max_redirects:
            break
        request = _follow(request, status, location)
    raise PermanentError(f"more than {max_redirects} redirects from {request.url}")


def _follow(request: Outbound, status: int, location: str) -> Outbound:
    """The request a redirect asks for, with the method and header rules browsers apply."""
    try:
        target = request.url.join(location)
    except httpx.InvalidURL as exc:
        raise PermanentError(f"redirect to an invalid URL {location!r}") from exc
    method, content = request.method, request.content
    if status == 303 or (status in (301, 302) and method == "POST"):
        method, content = "GET", None
    headers = dict(request.headers)
    if (target.scheme, target.host, target.port) != (
        request.url.scheme,
        request.url.host,
        request.url.port,
    ):
        headers = {k: v for k, v in headers.items() if k.lower() not in _CROSS_ORIGIN_DROPPED}
    return replace(request, method=method, url=target, headers=headers, content=content)


async def _pin(url: httpx.URL, allowlist: Allowlist) -> list[tuple[httpx.URL, dict[str, str]]]:
    """Check ``url``'s host and say where to connect: for plain http, each checked address
    in resolver order (the next is tried when one refuses the connection); for https, the name.
    """
    if url.scheme not in ("http", "https"):
        raise PermanentError(f"only http and https URLs are allowed, not {url.scheme!r}")
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await resolve_checked(url.host, port, allowlist)
    if url.scheme == "https":
        return [(url, {})]
    host = {"Host": url.netloc.decode("ascii")}
    return [(url.copy_with(host=str(address)), host) for address in addresses[:_MAX_ADDRESSES]]


async def _send_once(
    client: httpx.AsyncClient, request: Outbound, allowlist: Allowlist, max_bytes: int
) -> tuple[int, str | None, bytes]:
    """One hop: check, send, read; map transport failures onto the retry split."""
    candidates = await _pin(request.url, allowlist)
    try:
        return await _try_each(client, request, candidates, max_bytes)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"{request.method} {request.url} timed out: {exc!r}") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise PermanentError(f"{request.method} {request.url}: {exc}") from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"{request.method} {request.url} failed: {exc!r}") from exc


async def _try_each(
    client: httpx.AsyncClient,
    request: Outbound,
    candidates: list[tuple[httpx.URL, dict[str, str]]],
    max_bytes: int,
) -> tuple[int, str | None, bytes]:
    for index, (target, extra) in enumerate(candidates):
        try:
            return await _exchange(client, request, target, extra, max_bytes)
        except httpx.ConnectError:
            if index == len(candidates) - 1:
                raise
    raise PermanentError(f"{request.url} has no address to connect to")


async def _exchange(
    client: httpx.AsyncClient,
    request: Outbound,
    target: httpx.URL,
    extra: dict[str, str],
    max_bytes: int,
) -> tuple[int, str | None, bytes]:
    built = client.build_request(
        request.method,
        target,
        headers=merge_headers(request.headers, extra),
        content=request.content,
        timeout=request.timeout,
    )
    response = await client.send(built, stream=True)
    try:
        content = await _read_capped(response, max_bytes)
    finally:
        await response.aclose()
    return response.status_code, response.headers.get("location"), content


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """Read the body, refusing one larger than ``max_bytes`` (a result must fit in the store)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise PermanentError(f"response body larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def merge_headers(base: Mapping[str, str], top: Mapping[str, str]) -> dict[str, str]:
    """``base`` overridden by ``top``, comparing names case-insensitively as HTTP does."""
    replaced = {name.lower() for name in top}
    merged = {k: v for k, v in base.items() if k.lower() not in replaced}
    merged.update(top)
    return merged


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
    headers = config.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise PermanentError("executor_config.headers must map strings to strings")
    timeout = config.get("timeout_seconds", task.timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise PermanentError("executor_config.timeout_seconds must be a positive number")
    return Outbound(method, parsed, dict(headers), None, float(min(timeout, task.timeout)))


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
            {"Content-Type": "application/json", "Idempotency-Key": f"{task.id}:{task.attempt}"},
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

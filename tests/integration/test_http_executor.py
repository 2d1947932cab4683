"""The HTTP executor against a real HTTP server (uvicorn) on a free local port."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn

from conveyor.config import Settings
from conveyor.errors import PermanentError, RetryableError
from conveyor.executors.http import HttpExecutor
from conveyor.executors.netguard import AddressNotAllowed
from conveyor.models import Task
from tests.support.executors import allowing, running_task

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class Recorder:
    """What the business service saw: requests by path and client disconnects."""

    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    slow_started: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        body += chunk
        if not message.get("more_body"):
            return body


async def _respond(send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]]) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


ROUTES: dict[str, tuple[int, Any]] = {
    "/ok": (200, None),  # filled per request with the echo
    "/fail": (200, {"success": False, "error": "card declined"}),
    "/fail-retryable": (200, {"success": False, "error": "busy", "retryable": True}),
    "/bad": (400, {"error": "bad input"}),
    "/locked": (409, {"error": "locked", "retryable": True}),
    "/plain": (200, "hello"),
    "/empty": (204, ""),
    "/boom": (500, "internal error"),
    "/limited": (429, ""),
}


def make_app(recorder: Recorder) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        path = scope["path"]
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        raw = await _read_body(receive)
        body = json.loads(raw) if raw else None
        recorder.requests.append((path, headers, body))
        recorder.hits[path] = recorder.hits.get(path, 0) + 1
        if path == "/slow":
            recorder.slow_started.set()
            message = await receive()  # blocks until the client goes away
            if message["type"] == "http.disconnect":
                recorder.disconnected.set()
            return
        if path == "/flaky" and recorder.hits[path] == 1:
            await _respond(send, 503, {"error": "warming up"}, [])
            return
        if path in ("/ok", "/flaky"):
            data = {"echo": body, "idempotency_key": headers.get("idempotency-key")}
            await _respond(send, 200, {"success": True, "data": data}, [])
            return
        if path.startswith("/redirect"):
            target = scope["query_string"].decode().removeprefix("to=")
            await _respond(send, 302, "", [(b"location", target.encode())])
            return
        status, reply = ROUTES.get(path, (404, {"error": "no route"}))
        await _respond(send, status, reply, [])

    return app


@dataclass
class Service:
    base: str
    port: int
    recorder: Recorder


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    recorder = Recorder()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue in the kernel until uvicorn accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        make_app(recorder),
        log_level="warning",
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield Service(f"http://127.0.0.1:{port}", port, recorder)
    finally:
        server.should_exit = True
        await task
        sock.close()


def make_task(attempt: int = 1, timeout: float = 5) -> Task:
    return running_task("01TASKHTTP", "charge", attempt=attempt, timeout=timeout)


def settings(*allowed: str) -> Settings:
    return allowing(*allowed)


@pytest.fixture
async def executor() -> AsyncIterator[HttpExecutor]:
    executor = HttpExecutor(settings("127.0.0.1"))
    yield executor
    await executor.close()


async def test_success_returns_data_and_sends_the_contract(
    executor: HttpExecutor, service: Service
) -> None:
    result = await executor.execute(
        make_task(), {"url": f"{service.base}/ok", "headers": {"X-Tenant": "acme"}}
    )
    assert result == {
        "echo": {"task_id": "01TASKHTTP", "attempt": 1, "task_type": "charge",
                 "payload": {"amount": 42}},
        "idempotency_key": "01TASKHTTP:1",
    }
    _path, headers, _body = service.recorder.requests[0]
    assert headers["x-tenant"] == "acme"
    assert headers["content-type"] == "application/json"
    assert headers["host"] == f"127.0.0.1:{service.port}"


async def test_business_failure_is_permanent_unless_marked_retryable(
    executor: HttpExecutor, service: Service
) -> None:
    with pytest.raises(PermanentError, match="card declined"):
        await executor.execute(make_task(), {"url": f"{service.base}/fail"})
    with pytest.raises(RetryableError, match="busy"):
        await executor.execute(make_task(), {"url": f"{service.base}/fail-retryable"})


async def test_503_then_success_on_the_next_attempt(
    executor: HttpExecutor, service: Service
) -> None:
    with pytest.raises(RetryableError, match="503"):
        await executor.execute(make_task(attempt=1), {"url": f"{service.base}/flaky"})
    result = await executor.execute(make_task(attempt=2), {"url": f"{service.base}/flaky"})
    assert result["idempotency_key"] == "01TASKHTTP:2"
    assert service.recorder.hits["/flaky"] == 2


async def test_4xx_is_permanent_unless_the_body_says_retryable(
    executor: HttpExecutor, service: Service
) -> None:
    with pytest.raises(PermanentError, match="400: bad input"):
        await executor.execute(make_task(), {"url": f"{service.base}/bad"})
    with pytest.raises(RetryableError, match="409: locked"):
        await executor.execute(make_task(), {"url": f"{service.base}/locked"})
    with pytest.raises(PermanentError, match="404"):
        await executor.execute(make_task(), {"url": f"{service.base}/missing"})


async def test_5xx_and_429_are_retryable(executor: HttpExecutor, service: Service) -> None:
    with pytest.raises(RetryableError, match="500: internal error"):
        await executor.execute(make_task(), {"url": f"{service.base}/boom"})
    with pytest.raises(RetryableError, match="429"):
        await executor.execute(make_task(), {"url": f"{service.base}/limited"})


async def test_plain_2xx_is_success_with_its_body(
    executor: HttpExecutor, service: Service
) -> None:
    assert await executor.execute(make_task(), {"url": f"{service.base}/plain"}) == "hello"
    assert await executor.execute(make_task(), {"url": f"{service.base}/empty"}) is None


async def test_method_is_configurable(executor: HttpExecutor, service: Service) -> None:
    await executor.execute(make_task(), {"url": f"{service.base}/ok", "method": "put"})
    with pytest.raises(PermanentError, match="method"):
        await executor.execute(make_task(), {"url": f"{service.base}/ok", "method": "TRACE"})


async def test_task_timeout_cancels_the_request_promptly(
    executor: HttpExecutor, service: Service
) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            executor.execute(make_task(), {"url": f"{service.base}/slow"}), timeout=0.3
        )
    assert time.monotonic() - started < 1.0
    await asyncio.wait_for(service.recorder.disconnected.wait(), timeout=2)


async def test_cancellation_mid_request_closes_the_connection(
    executor: HttpExecutor, service: Service
) -> None:
    running = asyncio.create_task(executor.execute(make_task(), {"url": f"{service.base}/slow"}))
    await asyncio.wait_for(service.recorder.slow_started.wait(), timeout=2)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await asyncio.wait_for(service.recorder.disconnected.wait(), timeout=2)
    # The pool is still usable after an aborted exchange.
    assert await executor.execute(make_task(), {"url": f"{service.base}/plain"}) == "hello"


async def test_httpx_timeout_is_retryable(executor: HttpExecutor, service: Service) -> None:
    with pytest.raises(RetryableError, match="timed out"):
        await executor.execute(
            make_task(), {"url": f"{service.base}/slow", "timeout_seconds": 0.2}
        )


async def test_connection_refused_is_retryable(executor: HttpExecutor) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(RetryableError, match="failed"):
        await executor.execute(make_task(), {"url": f"http://127.0.0.1:{port}/ok"})


async def test_redirects_are_followed_and_rechecked(
    executor: HttpExecutor, service: Service
) -> None:
    result = await executor.execute(
        make_task(), {"url": f"{service.base}/redirect?to={service.base}/plain"}
    )
    assert result == "hello"
    with pytest.raises(AddressNotAllowed, match=r"169\.254\.169\.254"):
        await executor.execute(
            make_task(),
            {"url": f"{service.base}/redirect?to=http://169.254.169.254/latest/meta-data"},
        )
    with pytest.raises(PermanentError, match="more than 5 redirects"):
        await executor.execute(
            make_task(), {"url": f"{service.base}/redirect?to=/redirect?to=/redirect"}
        )


async def test_loopback_refused_when_not_allowed(service: Service) -> None:
    executor = HttpExecutor(settings())
    try:
        with pytest.raises(AddressNotAllowed, match="allowed_hosts"):
            await executor.execute(make_task(), {"url": f"{service.base}/ok"})
        with pytest.raises(AddressNotAllowed):
            await executor.execute(make_task(), {"url": f"http://localhost:{service.port}/ok"})
    finally:
        await executor.close()
    assert service.recorder.requests == []


async def test_metadata_address_refused_without_any_traffic() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    executor = HttpExecutor(settings("127.0.0.1"), transport=httpx.MockTransport(handler))
    try:
        for url in ("http://169.254.169.254/latest/meta-data", "http://[::ffff:169.254.169.254]/"):
            with pytest.raises(AddressNotAllowed):
                await executor.execute(make_task(), {"url": url})
    finally:
        await executor.close()
    assert sent == []


async def test_allowed_host_name_is_sent_to_the_checked_address(service: Service) -> None:
    executor = HttpExecutor(settings("localhost"))
    try:
        assert (
            await executor.execute(make_task(), {"url": f"http://localhost:{service.port}/plain"})
            == "hello"
        )
    finally:
        await executor.close()
    _path, headers, _body = service.recorder.requests[0]
    assert headers["host"] == f"localhost:{service.port}"


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({}, "url is required"),
        ({"url": "ftp://127.0.0.1/x"}, "only http and https"),
        ({"url": "http://127.0.0.1/", "headers": {"a": 1}}, "headers"),
        ({"url": "http://127.0.0.1/", "timeout_seconds": 0}, "timeout_seconds"),
    ],
)
async def test_bad_config_is_permanent(
    executor: HttpExecutor, config: dict[str, Any], match: str
) -> None:
    with pytest.raises(PermanentError, match=match):
        await executor.execute(make_task(), config)

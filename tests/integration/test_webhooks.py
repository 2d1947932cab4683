"""The webhook listener against a real receiver (uvicorn) on a free local port."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import uvicorn

from conveyor.config import HttpExecutorSettings, Settings
from conveyor.events import Event, EventKind
from conveyor.models import Priority, Task, TaskStatus
from conveyor.webhooks import SIGNATURE_HEADER, WebhookListener, verify_signature

SECRET = "s3cret"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class Receiver:
    """Records every POST; answers 500 for the first ``failures`` of each path."""

    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append((path, headers, body))
        self.hits[path] = self.hits.get(path, 0) + 1
        self.arrived.set()
        failing = path == "/down" or self.hits[path] <= self.failures.get(path, 0)
        status = 500 if failing else 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(body) for p, _h, body in self.received if p == path]


@dataclass
class Endpoint:
    base: str
    receiver: Receiver


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    receiver = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue in the kernel until uvicorn accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(receiver, log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield Endpoint(f"http://127.0.0.1:{port}", receiver)
    finally:
        server.should_exit = True
        await serving
        sock.close()


def settings(*allowed: str, secret: str | None = SECRET) -> Settings:
    return Settings(
        webhook_secret=secret, http_executor=HttpExecutorSettings(allowed_hosts=allowed)
    )


@pytest.fixture
async def listener() -> AsyncIterator[WebhookListener]:
    listener = WebhookListener(settings("127.0.0.1"), attempts=3, backoff_base=0.01)
    await listener.start()
    yield listener
    await listener.stop(grace=2)


def event(kind: EventKind, callback_url: str | None, status: TaskStatus, **extra: Any) -> Event:
    now = time.time()
    task = Task(
        id="01TASKHOOK",
        task_type="report",
        priority=Priority.NORMAL,
        payload={"n": 1},
        status=status,
        max_retries=3,
        timeout=5,
        created_at=now,
        run_at=now,
        attempt=2,
        finished_at=now,
        callback_url=callback_url,
    )
    return Event(kind, replace(task, **extra), now)


async def drain(listener: WebhookListener) -> None:
    """Wait until every queued delivery finished (sent, or given up on)."""
    await asyncio.wait_for(listener._queue.join(), timeout=5)


async def test_final_state_is_posted_once_and_signed(
    listener: WebhookListener, endpoint: Endpoint
) -> None:
    url = f"{endpoint.base}/hook"
    listener.notify(event(EventKind.STARTED, url, TaskStatus.PROCESSING))
    listener.notify(event(EventKind.RETRYING, url, TaskStatus.PENDING, error="flaky"))
    listener.notify(event(EventKind.SUCCEEDED, url, TaskStatus.SUCCESS, result={"ok": 1}))
    listener.notify(event(EventKind.SUCCEEDED, None, TaskStatus.SUCCESS))
    await drain(listener)
    assert len(endpoint.receiver.received) == 1
    _path, headers, body = endpoint.receiver.received[0]
    assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER.lower()])
    assert not verify_signature("wrong", body, headers[SIGNATURE_HEADER.lower()])
    document = json.loads(body)
    assert document == {
        "task_id": "01TASKHOOK",
        "task_type": "report",
        "status": "SUCCESS",
        "result": {"ok": 1},
        "error": None,
        "attempt": 2,
        "finished_at": document["finished_at"],
    }
    assert headers["x-conveyor-delivery"] == "01TASKHOOK:2:SUCCESS"
    assert headers["x-conveyor-event"] == "succeeded"


async def test_every_final_kind_is_posted_once(
    listener: WebhookListener, endpoint: Endpoint
) -> None:
    url = f"{endpoint.base}/hook"
    listener.notify(event(EventKind.FAILED, url, TaskStatus.FAILED, error="boom"))
    listener.notify(event(EventKind.TIMED_OUT, url, TaskStatus.TIMEOUT))
    listener.notify(event(EventKind.CANCELLED, url, TaskStatus.CANCELLED))
    await drain(listener)
    statuses = sorted(body["status"] for body in endpoint.receiver.bodies("/hook"))
    assert statuses == ["CANCELLED", "FAILED", "TIMEOUT"]


async def test_a_failing_receiver_is_retried_until_it_answers(
    listener: WebhookListener, endpoint: Endpoint
) -> None:
    endpoint.receiver.failures["/flaky"] = 2
    listener.notify(event(EventKind.SUCCEEDED, f"{endpoint.base}/flaky", TaskStatus.SUCCESS))
    await drain(listener)
    assert endpoint.receiver.hits["/flaky"] == 3
    bodies = {body for p, _h, body in endpoint.receiver.received}
    assert len(bodies) == 1  # every retry sends the same signed bytes


async def test_a_dead_receiver_is_given_up_on_without_blocking(
    listener: WebhookListener, endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    listener.notify(event(EventKind.FAILED, f"{endpoint.base}/down", TaskStatus.FAILED))
    assert time.monotonic() - started < 0.05  # notify only queues
    with caplog.at_level(logging.WARNING, logger="conveyor.webhooks"):
        await drain(listener)
    assert endpoint.receiver.hits["/down"] == 3
    assert "given up after 3 tries" in caplog.text


async def test_callback_to_a_refused_address_is_never_sent(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    listener = WebhookListener(settings(), attempts=3, backoff_base=0.01)
    await listener.start()
    try:
        with caplog.at_level(logging.WARNING, logger="conveyor.webhooks"):
            listener.notify(event(EventKind.SUCCEEDED, f"{endpoint.base}/hook", TaskStatus.SUCCESS))
            listener.notify(
                event(EventKind.SUCCEEDED, "http://169.254.169.254/hook", TaskStatus.SUCCESS)
            )
            await drain(listener)
    finally:
        await listener.stop()
    assert endpoint.receiver.received == []
    assert caplog.text.count("not a public address") == 2


async def test_unsigned_without_a_secret(endpoint: Endpoint) -> None:
    listener = WebhookListener(settings("127.0.0.1", secret=None))
    await listener.start()
    try:
        listener.notify(event(EventKind.SUCCEEDED, f"{endpoint.base}/hook", TaskStatus.SUCCESS))
        await drain(listener)
    finally:
        await listener.stop()
    _path, headers, _body = endpoint.receiver.received[0]
    assert SIGNATURE_HEADER.lower() not in headers


async def test_a_full_queue_drops_instead_of_blocking(caplog: pytest.LogCaptureFixture) -> None:
    listener = WebhookListener(settings("127.0.0.1"), queue_size=1)
    with caplog.at_level(logging.WARNING, logger="conveyor.webhooks"):
        for _ in range(3):
            listener.notify(event(EventKind.SUCCEEDED, "http://127.0.0.1:9/x", TaskStatus.SUCCESS))
    assert listener._queue.qsize() == 1
    assert caplog.text.count("queue full") == 2
    await listener.stop()


async def test_stop_abandons_deliveries_after_the_grace(endpoint: Endpoint) -> None:
    listener = WebhookListener(settings("127.0.0.1"), attempts=50, backoff_base=0.05)
    await listener.start()
    listener.notify(event(EventKind.FAILED, f"{endpoint.base}/down", TaskStatus.FAILED))
    await asyncio.wait_for(endpoint.receiver.arrived.wait(), timeout=5)
    started = time.monotonic()
    await listener.stop(grace=0.2)
    assert time.monotonic() - started < 1.0

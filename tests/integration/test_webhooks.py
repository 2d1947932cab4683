"""The webhook listener against real receivers (uvicorn) on free local ports."""

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
import standardwebhooks
import uvicorn

from conveyor.config import HttpExecutorSettings, Settings, WebhookSettings
from conveyor.events import Event, EventKind
from conveyor.models import Priority, Task, TaskStatus
from conveyor.webhooks import WebhookListener, new_secret, verify

SECRET = new_secret()
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class Receiver:
    """Records every POST. ``/down`` answers 500, as do the first ``failures`` of a path;
    ``/slow...`` holds the request until ``release`` is set; ``/trickle`` sends its answer one
    byte every 50 ms, forever (no read timeout ever fires, only a total deadline cuts it)."""

    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    active: int = 0
    peak: int = 0

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
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await self._answer(path, send)
        finally:
            self.active -= 1

    async def _answer(self, path: str, send: Send) -> None:
        if path.startswith("/slow"):
            await self.release.wait()
        failing = path == "/down" or self.hits[path] <= self.failures.get(path, 0)
        await send({"type": "http.response.start", "status": 500 if failing else 200,
                    "headers": [(b"content-type", b"text/plain")]})
        while path == "/trickle" and not self.release.is_set():
            await send({"type": "http.response.body", "body": b".", "more_body": True})
            await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b""})

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(body) for p, _h, body in self.received if p == path]


@dataclass
class Endpoint:
    base: str
    receiver: Receiver


async def serve() -> AsyncIterator[Endpoint]:
    receiver = Receiver()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections queue in the kernel until uvicorn accepts them
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        receiver, log_level="warning", lifespan="off", ws="none", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield Endpoint(f"http://127.0.0.1:{port}", receiver)
    finally:
        receiver.release.set()
        server.should_exit = True
        await serving
        sock.close()


endpoint = pytest.fixture(serve)
other_endpoint = pytest.fixture(serve)


def settings(*allowed: str, secret: str | None = SECRET, **policy: Any) -> Settings:
    return Settings(
        webhook_secret=secret,
        http_executor=HttpExecutorSettings(allowed_hosts=allowed),
        webhooks=WebhookSettings(**policy),
    )


@pytest.fixture
async def listener() -> AsyncIterator[WebhookListener]:
    listener = WebhookListener(settings("127.0.0.1", attempts=3, backoff_base=0.01))
    await listener.start()
    yield listener
    await listener.stop(grace=2)


def event(
    kind: EventKind, callback_url: str | None, status: TaskStatus, task_id: str = "01TASKHOOK",
    **extra: Any,
) -> Event:
    now = time.time()
    task = Task(
        id=task_id,
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
    await listener.wait_idle(timeout=5)


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
    document = verify(SECRET, headers, body)
    assert standardwebhooks.Webhook(SECRET).verify(body, headers) == document  # a receiver's lib
    assert document == {
        "task_id": "01TASKHOOK",
        "task_type": "report",
        "tenant": "default",
        "status": "SUCCESS",
        "result": {"ok": 1},
        "error": None,
        "attempt": 2,
        "finished_at": document["finished_at"],
    }
    assert headers["webhook-id"] == "01TASKHOOK:2:SUCCESS"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
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
    received = endpoint.receiver.received
    assert len({body for _p, _h, body in received}) == 1  # every retry sends the same bytes
    assert len({h["webhook-id"] for _p, h, _b in received}) == 1  # ... under the same id
    for _path, headers, body in received:  # each try signed on its own, and each verifies
        verify(SECRET, headers, body)


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
    listener = WebhookListener(settings(attempts=3, backoff_base=0.01))
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
    assert "webhook-signature" not in headers


async def test_a_full_backlog_drops_instead_of_blocking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listener = WebhookListener(settings("127.0.0.1", backlog=1))
    with caplog.at_level(logging.WARNING, logger="conveyor.webhooks"):
        for _ in range(3):
            listener.notify(event(EventKind.SUCCEEDED, "http://127.0.0.1:9/x", TaskStatus.SUCCESS))
    assert caplog.text.count("backlog full") == 2
    await listener.stop()


async def test_stop_abandons_deliveries_after_the_grace(endpoint: Endpoint) -> None:
    listener = WebhookListener(settings("127.0.0.1", attempts=50, backoff_base=0.05))
    await listener.start()
    listener.notify(event(EventKind.FAILED, f"{endpoint.base}/down", TaskStatus.FAILED))
    await asyncio.wait_for(endpoint.receiver.arrived.wait(), timeout=5)
    started = time.monotonic()
    await listener.stop(grace=0.2)
    assert time.monotonic() - started < 1.0


async def test_twenty_slow_receivers_do_not_hold_up_a_fast_one(
    endpoint: Endpoint, other_endpoint: Endpoint
) -> None:
    """Issue 10 finding 10, with the default delivery settings: 20 receivers on one host:port
    that hold every request, then one fast receiver elsewhere. Before per-destination limits,
    the 20 filled all 16 slots and the fast callback waited out their 10 s read timeouts."""
    slow, fast = endpoint, other_endpoint
    listener = WebhookListener(settings("127.0.0.1"))
    await listener.start()
    try:
        for n in range(20):
            url = f"{slow.base}/slow/{n}"
            listener.notify(event(EventKind.SUCCEEDED, url, TaskStatus.SUCCESS, f"01SLOW{n:02d}"))
        await asyncio.wait_for(slow.receiver.arrived.wait(), timeout=5)
        started = time.monotonic()
        listener.notify(event(EventKind.SUCCEEDED, f"{fast.base}/hook", TaskStatus.SUCCESS))
        await asyncio.wait_for(fast.receiver.arrived.wait(), timeout=2)
        took = time.monotonic() - started
        assert slow.receiver.peak <= WebhookSettings().per_destination
    finally:
        await listener.stop(grace=0)
    assert took < 2, took
    verify(SECRET, fast.receiver.received[0][1], fast.receiver.received[0][2])


async def test_a_receiver_that_never_finishes_is_cut_at_the_deadline_and_retried(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    """``/trickle`` keeps sending a byte every 50 ms, so no read timeout ever fires: only the
    total deadline ends each try."""
    listener = WebhookListener(
        settings("127.0.0.1", deadline=0.5, attempts=3, backoff_base=0.05, backoff_cap=0.05)
    )
    await listener.start()
    started = time.monotonic()
    try:
        with caplog.at_level(logging.INFO, logger="conveyor.webhooks"):
            url = f"{endpoint.base}/trickle"
            listener.notify(event(EventKind.SUCCEEDED, url, TaskStatus.SUCCESS))
            await listener.wait_idle(timeout=10)
    finally:
        await listener.stop(grace=0)
    took = time.monotonic() - started
    assert endpoint.receiver.hits["/trickle"] == 3
    assert 1.5 <= took < 3.0, took  # three tries of 0.5 s, two short backoffs
    assert caplog.text.count("no answer within the 0.5 s deadline") == 3
    assert "given up after 3 tries" in caplog.text


async def test_a_backoff_wait_holds_no_slot(endpoint: Endpoint, other_endpoint: Endpoint) -> None:
    """One slot in all: a failing receiver waiting out a long backoff must not keep it."""
    listener = WebhookListener(settings("127.0.0.1", concurrency=1, attempts=2, backoff_base=30))
    await listener.start()
    try:
        listener.notify(event(EventKind.FAILED, f"{endpoint.base}/down", TaskStatus.FAILED))
        await asyncio.wait_for(endpoint.receiver.arrived.wait(), timeout=5)
        url = f"{other_endpoint.base}/hook"
        listener.notify(event(EventKind.SUCCEEDED, url, TaskStatus.SUCCESS))
        await asyncio.wait_for(other_endpoint.receiver.arrived.wait(), timeout=2)
    finally:
        await listener.stop(grace=0)

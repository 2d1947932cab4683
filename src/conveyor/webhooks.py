"""The webhook listener: POST a task's final state to the ``callback_url`` given at creation.

Why it is shaped this way:

* ``notify`` runs inside the store's commit path (``events.EventBus``), so it only encodes the
  body and puts it on a bounded in-memory queue; it never waits. When the queue is full the
  delivery is dropped and logged: a stuck receiver must not grow the worker's memory or slow
  its tasks. Deliveries are best effort and at least once, never part of the task's outcome.
* A background consumer sends them with at most ``concurrency`` in flight, so one slow
  receiver cannot hold up the others. A failed delivery (transport error, timeout, non-2xx) is
  retried with exponential backoff and jitter, ``attempts`` times in all, then given up on and
  logged. A refused address or a malformed URL is given up on at once: retrying cannot help.
* Only final moves are sent (``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``CANCELLED``): a failed
  attempt that will be retried is emitted as ``RETRYING`` and is not final.
* The body is signed with HMAC-SHA256 over its exact bytes using ``settings.webhook_secret``, in
  ``X-Conveyor-Signature: sha256=<hex>`` (GitHub's scheme, so receivers know how to check it;
  ``verify_signature`` does it in constant time). Without a secret the header is left out.
  ``X-Conveyor-Delivery`` (``task_id:attempt:status``) stays the same across retries so a
  receiver can drop duplicates.
* Callback URLs go through the same address guard as the HTTP executor (``netguard``,
  ``http_executor.allowed_hosts``): a callback is caller-supplied, so it must not be a way to
  reach internal services. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
from dataclasses import dataclass

import httpx

from conveyor.config import Settings
from conveyor.errors import PermanentError, RetryableError
from conveyor.events import Event, EventKind
from conveyor.executors.netguard import Allowlist
from conveyor.executors.outbound import Outbound, build_client, send_checked
from conveyor.retry import exponential_delay

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Conveyor-Signature"
DELIVERY_HEADER = "X-Conveyor-Delivery"
EVENT_HEADER = "X-Conveyor-Event"

FINAL_STATUS: dict[EventKind, str] = {
    EventKind.SUCCEEDED: "SUCCESS",
    EventKind.FAILED: "FAILED",
    EventKind.TIMED_OUT: "TIMEOUT",
    EventKind.CANCELLED: "CANCELLED",
}
_MAX_REPLY_BYTES = 64 * 1024


def sign(secret: str, body: bytes) -> str:
    """The ``X-Conveyor-Signature`` value for ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """For receivers: does ``header`` sign ``body`` with ``secret``? (constant-time compare)"""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One final state to send, encoded once so every retry sends identical bytes."""

    url: str
    body: bytes
    headers: dict[str, str]
    task_id: str


def encode(event: Event, secret: str | None) -> Delivery | None:
    """The delivery for ``event``, or ``None`` when it is not final or has no callback."""
    status = FINAL_STATUS.get(event.kind)
    task = event.task
    if status is None or not task.callback_url:
        return None
    document = {
        "task_id": task.id,
        "task_type": task.task_type,
        "status": status,
        "result": task.result,
        "error": task.error,
        "attempt": task.attempt,
        "finished_at": task.finished_at if task.finished_at is not None else event.at,
    }
    body = json.dumps(document, separators=(",", ":"), default=str).encode()
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: event.kind.value,
        DELIVERY_HEADER: f"{task.id}:{task.attempt}:{status}",
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return Delivery(task.callback_url, body, headers, task.id)


class WebhookListener:
    """An ``events.Listener`` that delivers final states to callback URLs in the background."""

    def __init__(
        self,
        settings: Settings,
        *,
        queue_size: int = 10_000,
        concurrency: int = 16,
        attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        timeout: float = 10.0,
    ) -> None:
        self._secret = settings.webhook_secret
        self._allowlist = Allowlist.parse(settings.http_executor.allowed_hosts)
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=queue_size)
        self._concurrency = concurrency
        self._attempts = max(1, attempts)
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def notify(self, event: Event) -> None:
        delivery = encode(event, self._secret)
        if delivery is None:
            return
        try:
            self._queue.put_nowait(delivery)
        except asyncio.QueueFull:
            log.warning("webhook queue full, dropping callback for task %s", delivery.task_id)

    async def start(self) -> None:
        if self._consumer is None:
            self._client = build_client(self._concurrency)
            self._consumer = asyncio.create_task(self._consume(), name="webhook-deliveries")

    async def stop(self, grace: float = 5.0) -> None:
        """Give queued and running deliveries ``grace`` seconds, then abandon the rest."""
        if self._consumer is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout=grace)
            except TimeoutError:
                log.warning("webhook deliveries still pending at shutdown were abandoned")
            tasks = [self._consumer, *self._in_flight]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._consumer = None
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _consume(self) -> None:
        slots = asyncio.Semaphore(self._concurrency)
        while True:
            delivery = await self._queue.get()
            await slots.acquire()
            task = asyncio.create_task(self._deliver_then_release(delivery, slots))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _deliver_then_release(self, delivery: Delivery, slots: asyncio.Semaphore) -> None:
        try:
            await self.deliver(delivery)
        except Exception:  # a bug here must not kill the consumer
            log.exception("webhook delivery for task %s crashed", delivery.task_id)
        finally:
            slots.release()
            self._queue.task_done()

    async def deliver(self, delivery: Delivery) -> bool:
        """Send one delivery with retries; True once the receiver answered 2xx."""
        for attempt in range(1, self._attempts + 1):
            try:
                await self._send(delivery)
                return True
            except PermanentError as exc:
                log.warning("webhook for task %s not sent: %s", delivery.task_id, exc)
                return False
            except RetryableError as exc:
                log.info(
                    "webhook for task %s failed (try %d of %d): %s",
                    delivery.task_id, attempt, self._attempts, exc,
                )
            if attempt < self._attempts:
                await asyncio.sleep(self._delay(attempt))
        log.warning(
            "webhook for task %s given up after %d tries", delivery.task_id, self._attempts
        )
        return False

    def _delay(self, attempt: int) -> float:
        return exponential_delay(
            attempt, base=self._backoff_base, cap=self._backoff_cap, spread=(0.8, 1.2),
            draw=random.random(),  # jitter, not a secret
        )

    async def _send(self, delivery: Delivery) -> None:
        if self._client is None:
            raise RetryableError("the webhook listener is not started")
        try:
            url = httpx.URL(delivery.url)
        except httpx.InvalidURL as exc:
            raise PermanentError(f"invalid callback_url {delivery.url!r}: {exc}") from exc
        request = Outbound("POST", url, delivery.headers, delivery.body, self._timeout)
        reply = await send_checked(
            self._client, request, self._allowlist, max_bytes=_MAX_REPLY_BYTES, max_redirects=0
        )
        if not 200 <= reply.status_code < 300:
            raise RetryableError(f"receiver answered HTTP {reply.status_code}")


"""The webhook listener: POST a task's final state to the ``callback_url`` given at creation.

Why it is shaped this way:

* ``notify`` runs inside the store's commit path (``events.EventBus``), so it only encodes the
  body and queues it; it never waits. When a backlog bound is reached the delivery is dropped
  and logged: a stuck receiver must not grow the process's memory or slow its tasks.
  Deliveries are best effort and at least once, never part of the task's outcome.
* One slow receiver must not hold up the others (issue 10, finding 10). Deliveries queue per
  destination (``host:port``) in a ``FairQueue`` served round-robin; at most
  ``webhooks.concurrency`` are in flight, at most ``webhooks.per_destination`` of them to one
  destination, and each try has a total deadline (``webhooks.deadline``: resolve, connect,
  send and answer together, so a receiver trickling its answer byte by byte is cut too).
* A failed try (transport error, deadline, non-2xx) is retried with exponential backoff and
  jitter, ``webhooks.attempts`` tries in all, then given up on and logged. The backoff wait
  holds no slot: the delivery goes back to its destination's queue when it is due. A refused
  address or a malformed URL is given up on at once: retrying cannot help.
* Only final moves are sent (``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``CANCELLED``): a failed
  attempt that will be retried is emitted as ``RETRYING`` and is not final.
* Signed per Standard Webhooks (``signing``) when ``webhook_secret`` is set; every try is signed
  with its own timestamp over the same bytes and the same ``webhook-id``.
* Callback URLs go through the same address guard as the HTTP executor (``netguard``,
  ``http_executor.allowed_hosts``): a callback is caller-supplied, so it must not be a way to
  reach internal services. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.config import Settings
from conveyor.errors import PermanentError, RetryableError
from conveyor.events import Event, EventKind
from conveyor.executors.netguard import Allowlist
from conveyor.retry import exponential_delay
from conveyor.webhooks.fair import FairQueue
from conveyor.webhooks.signing import signed_headers, signing_key

if TYPE_CHECKING:  # imported by the first task with a callback: most processes send none
    import httpx

log = logging.getLogger(__name__)

EVENT_HEADER = "X-Conveyor-Event"

FINAL_STATUS: dict[EventKind, str] = {
    EventKind.SUCCEEDED: "SUCCESS",
    EventKind.FAILED: "FAILED",
    EventKind.TIMED_OUT: "TIMEOUT",
    EventKind.CANCELLED: "CANCELLED",
}
_MAX_REPLY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Delivery:
    """One final state to send, encoded once so every retry sends identical bytes."""

    url: httpx.URL
    body: bytes
    message_id: str
    event: str
    task_id: str

    @property
    def destination(self) -> str:
        """``host:port``, the unit the per-destination limits count in."""
        port = self.url.port or (443 if self.url.scheme == "https" else 80)
        return f"{self.url.host}:{port}"


@dataclass(frozen=True, slots=True)
class _Job:
    delivery: Delivery
    tries: int = 0


def encode(event: Event) -> Delivery | None:
    """The delivery for ``event``, or ``None`` when it is not final or has no callback.

    Raises ``PermanentError`` for a callback URL httpx cannot parse.
    """
    status = FINAL_STATUS.get(event.kind)
    task = event.task
    if status is None or not task.callback_url:
        return None
    document = {
        "task_id": task.id,
        "task_type": task.task_type,
        "tenant": task.tenant,
        "status": status,
        "result": task.result,
        "error": task.error,
        "attempt": task.attempt,
        "finished_at": task.finished_at if task.finished_at is not None else event.at,
    }
    body = json.dumps(document, separators=(",", ":"), default=str).encode()
    import httpx

    try:
        url = httpx.URL(task.callback_url)
    except httpx.InvalidURL as exc:
        raise PermanentError(f"invalid callback_url {task.callback_url!r}: {exc}") from exc
    message_id = f"{task.id}:{task.attempt}:{status}"
    return Delivery(url, body, message_id, event.kind.value, task.id)


class WebhookListener:
    """An ``events.Listener`` that delivers final states to callback URLs in the background."""

    def __init__(self, settings: Settings) -> None:
        self._key = None if not settings.webhook_secret else signing_key(settings.webhook_secret)
        self._allowlist = Allowlist.parse(settings.http_executor.allowed_hosts)
        self._policy = policy = settings.webhooks
        self._queue: FairQueue[_Job] = FairQueue(
            per_key=policy.per_destination,
            max_items=policy.backlog,
            max_per_key=policy.destination_backlog,
        )
        self._wake = asyncio.Event()  # something was queued or a slot freed
        self._idle = asyncio.Event()  # nothing queued, running or waiting for a retry
        self._idle.set()
        self._busy = 0  # slots in use
        self._tasks: set[asyncio.Task[None]] = set()  # tries running and retries waiting
        self._client: httpx.AsyncClient | None = None
        self._consumer: asyncio.Task[None] | None = None

    def notify(self, event: Event) -> None:
        try:
            delivery = encode(event)
        except PermanentError as exc:
            log.warning("webhook for task %s not sent: %s", event.task.id, exc)
            return
        if delivery is None:
            return
        if not self._queue.admit(delivery.destination, _Job(delivery)):
            log.warning(
                "webhook backlog full (for %s or in all), dropping callback for task %s",
                delivery.destination, delivery.task_id,
            )
            return
        self._idle.clear()
        self._wake.set()

    async def start(self) -> None:
        if self._consumer is None:
            self._consumer = asyncio.create_task(self._consume(), name="webhook-deliveries")

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until every accepted delivery is sent or given up on (``TimeoutError`` after
        ``timeout``)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def stop(self, grace: float = 5.0) -> None:
        """Give queued and running deliveries ``grace`` seconds, then abandon the rest."""
        if self._consumer is not None:
            try:
                await self.wait_idle(grace)
            except TimeoutError:
                log.warning("webhook deliveries still pending at shutdown were abandoned")
            tasks = [self._consumer, *self._tasks]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._consumer = None
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _consume(self) -> None:
        while True:
            picked = None
            if self._busy < self._policy.concurrency:
                picked = self._queue.take()
            if picked is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._busy += 1
            self._track(self._try(*picked))

    def _track(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _try(self, destination: str, job: _Job) -> None:
        """One try of one delivery in its slot; then free the slot and settle or re-queue it."""
        job = _Job(job.delivery, job.tries + 1)
        outcome: bool | None = False  # True sent, False given up, None try again
        try:
            outcome = await self._send_once(job)
        except Exception:  # a bug here must not kill the consumer
            log.exception("webhook delivery for task %s crashed", job.delivery.task_id)
        finally:
            self._queue.done(destination)
            self._busy -= 1
            self._wake.set()
        if outcome is None:
            self._track(self._retry_later(destination, job))
            return
        self._queue.forget(destination)
        if not self._queue.held:
            self._idle.set()

    async def _send_once(self, job: _Job) -> bool | None:
        delivery, attempts = job.delivery, self._policy.attempts
        try:
            async with asyncio.timeout(self._policy.deadline):
                await self._send(delivery)
            return True
        except PermanentError as exc:
            log.warning("webhook for task %s not sent: %s", delivery.task_id, exc)
            return False
        except (RetryableError, TimeoutError) as exc:
            reason = exc if isinstance(exc, RetryableError) else (
                f"no answer within the {self._policy.deadline:g} s deadline"
            )
            log.info(
                "webhook for task %s failed (try %d of %d): %s",
                delivery.task_id, job.tries, attempts, reason,
            )
        if job.tries >= attempts:
            log.warning("webhook for task %s given up after %d tries", delivery.task_id, attempts)
            return False
        return None

    async def _retry_later(self, destination: str, job: _Job) -> None:
        """Wait out the backoff holding no slot, then queue the delivery again."""
        await asyncio.sleep(exponential_delay(
            job.tries, base=self._policy.backoff_base, cap=self._policy.backoff_cap,
            spread=(0.8, 1.2), draw=random.random(),  # jitter, not a secret
        ))
        self._queue.again(destination, job)
        self._wake.set()

    async def _send(self, delivery: Delivery) -> None:
        from conveyor.executors.outbound import Outbound, build_client, send_checked

        if self._consumer is None:
            raise RetryableError("the webhook listener is not started")
        if self._client is None:  # on the first delivery: its TLS set-up slows every start
            self._client = build_client(self._policy.concurrency)
        headers = {"Content-Type": "application/json", EVENT_HEADER: delivery.event}
        if self._key is not None:
            headers |= signed_headers(self._key, delivery.message_id, delivery.body, time.time())
        request = Outbound("POST", delivery.url, headers, delivery.body, self._policy.deadline)
        reply = await send_checked(
            self._client, request, self._allowlist, max_bytes=_MAX_REPLY_BYTES, max_redirects=0
        )
        if not 200 <= reply.status_code < 300:
            raise RetryableError(f"receiver answered HTTP {reply.status_code}")

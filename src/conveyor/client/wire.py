"""What both clients share: the requests they build, the answers they read, their errors.

Pure apart from the clock ``Poll`` reads and the environment ``target`` reads: the transports
(``sync``, ``aio``) only send a ``Request`` and hand the response to ``read``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError

if TYPE_CHECKING:  # the transports import it; ``target`` is used where none is built
    import httpx

FINAL = frozenset({"SUCCESS", "FAILED", "TIMEOUT", "CANCELLED"})


class ApiError(ConveyorError):
    """The server answered with an error; ``status`` and ``code`` say which."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ) -> None:
        # No status when nothing answered: "0 unreachable" would only puzzle.
        text = f"{status} {code}: {message}" if status else message
        if retry_after is not None:
            text += f" (retry after {retry_after} s)"
        super().__init__(text)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after  # a 429's Retry-After, in seconds


class TaskFailed(ConveyorError):
    """Waited for a result, but the task ended FAILED, TIMEOUT or CANCELLED."""

    def __init__(self, task: TaskInfo) -> None:
        super().__init__(f"task {task.task_id} ended {task.status}: {task.error or ''}".strip())
        self.task = task


class WaitTimeout(ConveyorError):
    """The task did not reach a final state within the wait."""


@dataclass(frozen=True, slots=True)
class TaskInfo:
    task_id: str
    task_type: str
    status: str
    priority: str
    metadata: dict[str, str]
    attempt: int
    retry_count: int
    max_retries: int
    timeout_seconds: float
    payload: dict[str, Any] | None = None  # None in a list's summary unless included
    result: Any = None
    error: str | None = None
    worker_id: str | None = None
    idempotency_key: str | None = None
    created_at: str | None = None
    run_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    created: bool | None = None
    cancel_requested: bool | None = None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskInfo:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None


def _task_body(
    task_type: str, payload: Mapping[str, Any] | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    body = {"task_type": task_type, "payload": dict(payload or {})}
    body.update({k: v for k, v in options.items() if v is not None})
    return body


def create(task_type: str, payload: Mapping[str, Any] | None, **options: Any) -> Request:
    return Request("POST", "/api/v1/tasks", _task_body(task_type, payload, options))


def create_many(tasks: Sequence[Mapping[str, Any]]) -> Request:
    return Request("POST", "/api/v1/tasks/batch", {"tasks": list(tasks)})


def listing(
    status: str | None, task_type: str | None, limit: int, cursor: str | None,
    include: Sequence[str] = (),
) -> Request:
    params = {
        "status": status, "type": task_type, "limit": limit, "cursor": cursor,
        "include": ",".join(include) or None,
    }
    return Request(
        "GET", "/api/v1/tasks", params={k: v for k, v in params.items() if v is not None}
    )


def audit_listing(filters: Mapping[str, Any], limit: int, cursor: str | None) -> Request:
    """A page of ``GET /api/v1/audit``: ``filters`` are its query parameters (action, target,
    key_id, since, until), the None ones left out."""
    params = {**filters, "limit": limit, "cursor": cursor}
    return Request(
        "GET", "/api/v1/audit", params={k: v for k, v in params.items() if v is not None}
    )


def retry_after(response: httpx.Response) -> int | None:
    """The ``Retry-After`` seconds of a refusal, when the server gave a number."""
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None


def read(response: httpx.Response) -> Any:
    """The JSON body, or ``ApiError`` carrying the server's own message (or saying that
    what answered is not a Conveyor API)."""
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            raise ApiError(response.status_code, error["code"], error["message"],
                           retry_after(response))
        except (ValueError, KeyError, TypeError):
            raise not_conveyor(response) from None
    if response.status_code == 204:
        return None
    try:
        return response.json()
    except ValueError:
        raise not_conveyor(response) from None


def not_conveyor(response: httpx.Response) -> ApiError:
    base = str(response.request.url.copy_with(path="/", query=None))
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    return ApiError(
        response.status_code, "not_conveyor",
        f"{base} answered {response.status_code} {response.reason_phrase} ({kind}) to "
        f"{response.request.method} {response.request.url.path}, which a Conveyor API would "
        "not; is --url / CONVEYOR_URL the Conveyor API?",
    )


def unreachable(base_url: object, exc: httpx.TransportError) -> ApiError:
    return ApiError(0, "unreachable", f"cannot reach {base_url}: {exc or type(exc).__name__}")


DEFAULT_URL = "http://127.0.0.1:8080"


def target(url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """Where to send requests and with which key: the arguments, else ``CONVEYOR_URL`` and
    ``CONVEYOR_API_KEY`` (the CLI's variables, so one environment serves both), else the local
    standalone server without a key."""
    found_url = url or os.environ.get("CONVEYOR_URL") or DEFAULT_URL
    found_key = api_key if api_key is not None else os.environ.get("CONVEYOR_API_KEY") or None
    return found_url, found_key


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def settled(info: TaskInfo) -> Any:
    if info.status == "SUCCESS":
        return info.result
    raise TaskFailed(info)


class Poll:
    """Polling schedule for ``wait``: starts fast (most tasks finish in milliseconds) and
    backs off to half a second."""

    def __init__(self, timeout: float | None) -> None:
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.delay = 0.01

    def next_delay(self, what: str) -> float:
        """``what``: what is waited for, as the timeout's text names it ("task 01M8...")."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise WaitTimeout(f"{what} is not finished yet")
        delay, self.delay = self.delay, min(0.5, self.delay * 1.5)
        return delay

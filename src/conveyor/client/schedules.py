"""Schedule calls of the clients: ``client.schedules.put(...)`` on ``Client`` (answers) and
``AsyncClient`` (awaitables of answers). One class for both: each method only builds the
request and hands it to the client's ``call``, which is blocking or async."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from conveyor.client.wire import Request

T = TypeVar("T")
_BASE = "/api/v1/schedules"


def _when(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


class ScheduleCalls(Generic[T]):
    """Each answer is the API's JSON (see ``/docs``): ``list()`` gives ``{"schedules": [...]}``
    with next fire times, ``fires()`` gives ``{"fires": [...]}``."""

    def __init__(self, call: Callable[[Request], T]) -> None:
        self._call = call

    def _path(self, name: str, action: str = "") -> str:
        return f"{_BASE}/{quote(name, safe='')}{action}"

    def put(self, name: str, schedule: Mapping[str, Any]) -> T:
        """Create or replace: ``{"task_type", "payload", "cron" | "every_seconds", ...}``."""
        return self._call(Request("PUT", self._path(name), dict(schedule)))

    def list(self) -> T:
        return self._call(Request("GET", _BASE))

    def get(self, name: str) -> T:
        return self._call(Request("GET", self._path(name)))

    def delete(self, name: str) -> T:
        return self._call(Request("DELETE", self._path(name)))

    def pause(self, name: str) -> T:
        return self._call(Request("POST", self._path(name, "/pause")))

    def resume(self, name: str) -> T:
        return self._call(Request("POST", self._path(name, "/resume")))

    def trigger(self, name: str) -> T:
        """Fire now, once."""
        return self._call(Request("POST", self._path(name, "/trigger")))

    def backfill(self, name: str, start: datetime | str, end: datetime | str) -> T:
        """Fire each fire time of [start, end] once (at most 10,000)."""
        body = {"from": _when(start), "to": _when(end)}
        return self._call(Request("POST", self._path(name, "/backfill"), body))

    def fires(self, name: str, limit: int = 100) -> T:
        return self._call(Request("GET", self._path(name, "/fires"), params={"limit": limit}))

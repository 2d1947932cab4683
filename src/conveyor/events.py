"""Lifecycle events and the listeners that observe them (metrics, webhooks, audit).

The store emits an event after each committed state move; listeners are called in order and
must not block: a slow listener (a webhook) queues its own work. A failing listener is logged
and never affects the task.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from conveyor.models import Task

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    CREATED = "created"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    task: Task
    at: float


class Listener(Protocol):
    def notify(self, event: Event) -> None:
        """Observe one event; must return quickly and never raise on purpose."""


class EventBus:
    """Fans events out to listeners; one broken listener does not silence the others."""

    def __init__(self, listeners: Sequence[Listener] = ()) -> None:
        self._listeners = list(listeners)

    def add(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def emit(self, events: Sequence[Event]) -> None:
        for event in events:
            for listener in self._listeners:
                try:
                    listener.notify(event)
                except Exception:
                    log.exception("listener %r failed on %s", listener, event.kind)

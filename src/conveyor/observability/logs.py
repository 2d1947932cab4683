"""Logging through structlog: human-readable lines on a terminal (``log_format: console``),
one JSON object per line in production (``json``).

The code logs with the standard library (``logging.getLogger``); structlog's
``ProcessorFormatter`` renders those records, adding the context bound with
``structlog.contextvars`` (a running attempt binds task_id, task_type, attempt and
worker_id) and the same fields passed as ``extra=`` (the scheduler's epoch).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

CONTEXT = {"task_id", "task_type", "attempt", "worker_id", "epoch"}


def _chain() -> list[Any]:
    """What every record goes through before rendering, stdlib or structlog alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.ExtraAdder(CONTEXT),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
    ]


def renderer(fmt: str) -> Any:
    if fmt == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), pad_event_to=0)


def configure(level: str = "INFO", fmt: str = "console") -> None:
    chain = _chain()
    if fmt == "json":
        chain[-1] = structlog.processors.TimeStamper(fmt=None, key="ts")  # epoch seconds
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer(fmt),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "alembic", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[*chain, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

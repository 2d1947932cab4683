"""What a process says once it is ready: one line per role, so whoever started it sees what
runs, where it listens and which backends it uses, without reading the settings.

Credentials in URLs are masked: the banner goes to logs that many people read.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from conveyor import __version__
from conveyor.config import Settings


def mask(url: str) -> str:
    """``scheme://user:secret@host/db`` → ``scheme://user:***@host/db``; others unchanged."""
    parts = urlsplit(url)
    if not parts.scheme or parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def backends(settings: Settings, *, standalone: bool) -> str:
    url = settings.coordination_url or settings.redis_url or ""
    coordination = "in-process queues" if standalone else mask(url)
    return f"store {mask(settings.database_url)}, coordination {coordination}"


def api_line(settings: Settings, *, standalone: bool) -> str:
    kind = "standalone" if standalone else "API"
    return (f"Conveyor {__version__} {kind} on http://{settings.host}:{settings.port} "
            f"({backends(settings, standalone=standalone)}); API docs at /docs")


def worker_line(worker_id: str, capacity: int, types: Sequence[str]) -> str:
    return (f"worker {worker_id} ready: capacity {capacity}, "
            f"types {', '.join(types) if types else '* (every type)'}")


def scheduler_line(holder: str, epoch: int | None, leader: str | None) -> str:
    if epoch is not None:
        return f"scheduler {holder} is the leader (epoch {epoch})"
    if leader is None:  # the elector's next pass takes the lease and says so
        return f"scheduler {holder} ready; no leader yet, electing"
    return f"scheduler {holder} is standby; the leader is {leader}"


def process_line(settings: Settings, roles: Sequence[str]) -> str:
    where = "" if settings.metrics_port is None else (
        f", metrics on http://{settings.host}:{settings.metrics_port}/metrics")
    return (f"Conveyor {__version__} {' + '.join(roles)} ready "
            f"({backends(settings, standalone=False)}{where})")

"""One standalone per SQLite file: an exclusive lock on a sidecar file beside the database.

Standalone keeps its queues in process memory, so two standalones on one file would both
elect themselves leader over the same rows and each run its own worker. The lock (``fcntl``,
released by the kernel when the process dies, so a SIGKILL leaves nothing stale) makes the
second one refuse at start, naming the first one's pid.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from conveyor.errors import ConfigError
from conveyor.store.urls import database_url


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite database URL; None for a server database or ``:memory:``."""
    parsed = database_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


class StandaloneLock:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.path = db.with_name(db.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"another conveyor standalone (pid {holder}) already runs on "
                f"{self.db}; stop it, or give this one its own --db"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock; the file may stay
            self._fd = None

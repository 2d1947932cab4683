"""The retention archive: rows about to be purged, appended as JSON lines to one file per table
per day (``task-2026-12-01.jsonl``, the day of the purge in UTC).

Durable before the delete: ``keep`` writes, flushes and fsyncs the file (and, for a new file,
its directory) and only then returns, inside the purge's transaction, so a crash at any point
loses no row; a crash after the fsync but before the commit leaves rows that the next pass
archives again, so a reader must expect a row twice (the key tells them apart, the last copy
wins). Each line is the row as stored: column names to values, JSON columns (a task's payload,
metadata, result) as the text the database holds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

import orjson

from conveyor.errors import ArchiveFailed, ConfigError
from conveyor.store.retention import Row


class JsonlArchive:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def check(self) -> None:
        """Make the directory and prove it takes files, so a wrong path stops the scheduler at
        start with its name rather than failing every purge later."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / ".conveyor-write-check"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"retention.archive_dir {str(self.directory)!r} cannot be written: {exc}"
            ) from exc

    def path(self, table: str, now: float) -> Path:
        day = dt.datetime.fromtimestamp(now, dt.UTC).date().isoformat()
        return self.directory / f"{table}-{day}.jsonl"

    async def keep(self, table: str, rows: Sequence[Row], now: float) -> None:
        if not rows:
            return
        path = self.path(table, now)
        try:
            # In a thread: an fsync takes milliseconds, which the event loop must not wait out.
            await asyncio.to_thread(self._append, path, rows)
        except OSError as exc:  # not OSError: the store would take it for a lost connection
            raise ArchiveFailed(f"cannot append to {path}: {exc}") from exc

    def _append(self, path: Path, rows: Sequence[Row]) -> None:
        fresh = not path.exists()
        data = b"".join(orjson.dumps(dict(r), option=orjson.OPT_APPEND_NEWLINE) for r in rows)
        with path.open("ab") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if fresh:  # the file's directory entry must survive a crash too
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

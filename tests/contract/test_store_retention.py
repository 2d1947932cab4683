"""The store contract for retention's purge queries, on SQLite, MariaDB and PostgreSQL: exactly
the expired final rows go, with their logs, in bounded batches, after the archive kept them."""

from __future__ import annotations

from pathlib import Path

import orjson
import sqlalchemy as sa

from conveyor.config import RetentionSettings
from conveyor.models import TaskStatus
from conveyor.scheduler.archive import JsonlArchive
from conveyor.scheduler.retention import purge_targets
from conveyor.store.retention import PurgeTarget
from conveyor.store.schema import task, task_logs
from conveyor.store.sql import SqlStore
from tests.support.finished import ended

S = TaskStatus
DAY = 86_400.0
NOW = 2_000_000_000.0
POLICY = RetentionSettings(succeeded=7 * DAY, failed=30 * DAY, logs=60 * DAY)


async def purge_all(
    store: SqlStore, targets: list[PurgeTarget], archive: JsonlArchive | None = None,
    batch: int = 100,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for target in targets:
        while keys := await store.retention.expired(target, NOW, batch):
            for table, n in (await store.retention.purge(target, keys, NOW, archive)).items():
                counts[table] = counts.get(table, 0) + n
    return counts


async def ids(store: SqlStore) -> set[str]:
    return {r["id"] for r in await store.db.rows(sa.select(task.c.id))}


async def log_task_ids(store: SqlStore) -> set[str]:
    return {r["task_id"] for r in await store.db.rows(sa.select(task_logs.c.task_id))}


async def test_exactly_the_expired_final_tasks_go_with_their_logs(store: SqlStore) -> None:
    gone = [
        *await ended(store, S.SUCCESS, NOW - 8 * DAY, 3),
        *await ended(store, S.FAILED, NOW - 31 * DAY),
        *await ended(store, S.TIMEOUT, NOW - 31 * DAY),
        *await ended(store, S.CANCELLED, NOW - 31 * DAY),
    ]
    kept = [
        *await ended(store, S.SUCCESS, NOW - 6 * DAY),
        *await ended(store, S.FAILED, NOW - 8 * DAY),  # failed rows are kept 30 days
        *await ended(store, S.CANCELLED, NOW - 29 * DAY),
        *await ended(store, S.PENDING, NOW - 50 * DAY),  # never deleted, however old
        *await ended(store, S.PROCESSING, NOW - 50 * DAY),
    ]
    counts = await purge_all(store, purge_targets(POLICY))
    assert await ids(store) == {t.id for t in kept}
    assert await log_task_ids(store) == {t.id for t in kept}
    assert counts["task"] == len(gone)
    # created, started, ended (3 each); a cancelled pending task was never started (2)
    assert counts["task_logs"] == 3 * (len(gone) - 1) + 2


async def test_logs_older_than_their_setting_go_while_the_task_stays(store: SqlStore) -> None:
    [old] = await ended(store, S.PENDING, NOW - 61 * DAY)
    [recent] = await ended(store, S.PENDING, NOW - 59 * DAY)
    await purge_all(store, purge_targets(POLICY))
    assert await ids(store) == {old.id, recent.id}
    assert await store.tasks.logs(old.id) == []
    assert len(await store.tasks.logs(recent.id)) == 1


async def test_zero_keeps_forever(store: SqlStore) -> None:
    await ended(store, S.SUCCESS, NOW - 1000 * DAY)
    forever = RetentionSettings(succeeded=0, failed=0, logs=0, audit=0, schedule_fires=0,
                                workflows=0)
    targets = [t for t in purge_targets(forever) if t.enabled]
    assert targets == [] and await purge_all(store, targets) == {}


async def test_batches_are_bounded_and_oldest_first(store: SqlStore) -> None:
    tasks = [t for day in range(8, 13) for t in await ended(store, S.SUCCESS, NOW - day * DAY)]
    success = next(x for x in purge_targets(POLICY) if x.status == "SUCCESS")
    first = await store.retention.expired(success, NOW, 2)
    assert first == [t.id for t in tasks[::-1][:2]]  # the oldest two
    assert await store.retention.purge(success, first, NOW) == {"task": 2, "task_logs": 6}
    assert len(await ids(store)) == 3


async def test_a_task_reopened_after_it_was_found_is_kept(store: SqlStore) -> None:
    [t] = await ended(store, S.FAILED, NOW - 31 * DAY)
    failed = next(x for x in purge_targets(POLICY) if x.status == "FAILED")
    keys = await store.retention.expired(failed, NOW, 10)
    assert keys == [t.id]
    await store.moves.reopen(t.id, NOW, "manual retry")
    assert await store.retention.purge(failed, keys, NOW) == {}
    assert await ids(store) == {t.id} and len(await store.tasks.logs(t.id)) == 4


async def test_the_archive_holds_every_deleted_row_as_stored(
    store: SqlStore, tmp_path: Path
) -> None:
    gone = await ended(store, S.SUCCESS, NOW - 8 * DAY, 3)
    [kept] = await ended(store, S.PENDING, NOW - 61 * DAY)
    stored_tasks = await store.db.rows(sa.select(task).where(task.c.id.in_([t.id for t in gone])))
    stored_logs = await store.db.rows(sa.select(task_logs))
    archive = JsonlArchive(tmp_path / "archive")
    archive.check()
    await purge_all(store, purge_targets(POLICY), archive)
    files = sorted(p.name for p in archive.directory.iterdir())
    assert files == ["task-2033-05-18.jsonl", "task_logs-2033-05-18.jsonl"]

    def lines(name: str) -> list[dict[str, object]]:
        return [orjson.loads(x) for x in (archive.directory / name).read_bytes().splitlines()]

    def by_id(rows: object) -> dict[object, dict[str, object]]:
        return {r["id"]: dict(r) for r in rows}  # type: ignore[attr-defined]

    assert by_id(lines(files[0])) == by_id(stored_tasks)
    assert by_id(lines(files[1])) == by_id(stored_logs)  # the task's logs and the old log
    assert await store.tasks.logs(kept.id) == []

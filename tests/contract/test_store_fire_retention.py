"""Retention of schedule fire history on SQLite, MariaDB and PostgreSQL: ``schedule_fires`` has
a composite primary key, and the purge finds, locks, archives and deletes by key tuples:
exactly the fires recorded before the cutoff go, never a buffered one, in bounded batches."""

from __future__ import annotations

from pathlib import Path

import orjson
import sqlalchemy as sa

from conveyor.config import RetentionSettings
from conveyor.scheduler.archive import JsonlArchive
from conveyor.scheduler.retention import fire_targets, purge_targets
from conveyor.schedules.model import Fire, FireKind, FireOutcome
from conveyor.store.schedule_rows import fire_row
from conveyor.store.schema import schedule_fires
from conveyor.store.sql import SqlStore
from tests.contract.test_store_retention import DAY, NOW, purge_all

POLICY = RetentionSettings(schedule_fires=30 * DAY)
Out = FireOutcome


def fires(outcome: FireOutcome, recorded_at: float, n: int, name: str = "tick",
          tenant: str = "default") -> list[Fire]:
    """``n`` fires whose keys differ in every column but the tenant: same fire time under two
    kinds, two names, so a purge that matched one key column at a time would take too many."""
    return [Fire(tenant, f"{name}{i % 2}", 1000.0 + i // 2, kind, outcome,
                 recorded_at=recorded_at) for i in range(n) for kind in FireKind][:n]


async def insert(store: SqlStore, rows: list[Fire]) -> None:
    async with store.db.begin() as conn:
        await conn.execute(schedule_fires.insert(), [fire_row(f) for f in rows])


async def keys(store: SqlStore) -> set[tuple[object, ...]]:
    c = schedule_fires.c
    query = sa.select(c.tenant, c.name, c.fire_at, c.kind)
    return {tuple(r.values()) for r in await store.db.rows(query)}


def key_set(rows: list[Fire]) -> set[tuple[object, ...]]:
    return {(f.tenant, f.name, f.fire_at, str(f.kind)) for f in rows}


async def test_exactly_the_old_fires_go_and_buffered_ones_stay(store: SqlStore) -> None:
    old = NOW - 31 * DAY
    gone = [*fires(Out.FIRED, old, 250), *fires(Out.SKIPPED, old, 3, "s"),
            *fires(Out.MISSED, old, 3, "m"), *fires(Out.FAILED, old, 3, "f", "acme")]
    kept = [*fires(Out.BUFFERED, NOW - 90 * DAY, 4, "b"),  # still to fire: however old
            *fires(Out.FIRED, NOW - 29 * DAY, 5, "recent")]
    await insert(store, gone + kept)

    counts = await purge_all(store, purge_targets(POLICY), batch=120)

    assert counts["schedule_fires"] == len(gone)
    assert await keys(store) == key_set(kept)


async def test_forever_keeps_them_and_the_archive_holds_the_rows(
    store: SqlStore, tmp_path: Path,
) -> None:
    rows = fires(Out.FIRED, NOW - 31 * DAY, 7)
    await insert(store, rows)
    assert not any(t.enabled for t in fire_targets(RetentionSettings(schedule_fires=0)))
    archive = JsonlArchive(tmp_path / "archive")
    archive.check()

    await purge_all(store, fire_targets(POLICY), archive, batch=3)

    assert await keys(store) == set()
    [name] = [p.name for p in archive.directory.iterdir()]
    assert name.startswith("schedule_fires-")
    archived = [orjson.loads(x) for x in (archive.directory / name).read_bytes().splitlines()]
    assert sorted(archived, key=lambda r: (r["name"], r["fire_at"], r["kind"])) == sorted(
        (fire_row(f) for f in rows), key=lambda r: (r["name"], r["fire_at"], r["kind"]))


async def test_a_fire_recorded_again_since_it_was_found_is_kept(store: SqlStore) -> None:
    [f] = fires(Out.FIRED, NOW - 31 * DAY, 1)
    await insert(store, [f])
    [target] = [t for t in fire_targets(POLICY) if t.status == "fired"]
    found = await store.retention.expired(target, NOW, 10)
    assert found == [(f.tenant, f.name, f.fire_at, str(f.kind))]
    async with store.db.begin() as conn:
        await conn.execute(schedule_fires.update().values(recorded_at=NOW))
    assert await store.retention.purge(target, found, NOW) == {}
    assert await keys(store) == key_set([f])

"""Retention: only the leader purges, in passes of bounded batches, counting what it removed;
an archive that cannot keep a batch stops the delete of that batch."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from conveyor.config import RetentionSettings
from conveyor.errors import ConfigError
from conveyor.models import TaskStatus
from conveyor.scheduler.archive import JsonlArchive
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.retention import Retention, keep_for, purge_targets
from conveyor.store.sql import SqlStore
from tests.support.finished import ended

from .conftest import Clock

S = TaskStatus
POLICY = RetentionSettings(succeeded=100, failed=1000, logs=10_000)


def retention(store: SqlStore, elector: Elector, *, batch: int = 100, batches: int = 10,
              archive: JsonlArchive | None = None,
              policy: RetentionSettings = POLICY) -> Retention:
    return Retention(store.retention, elector, purge_targets(policy), interval=60.0,
                     batch=batch, batches_per_pass=batches, archive=archive)


async def remaining(store: SqlStore, *tasks_ids: str) -> int:
    return len(await store.tasks.get_many(list(tasks_ids)))


def test_success_keeps_by_succeeded_every_other_final_status_by_failed() -> None:
    assert keep_for(S.SUCCESS, POLICY) == 100
    assert {keep_for(s, POLICY) for s in (S.FAILED, S.TIMEOUT, S.CANCELLED)} == {1000}
    statuses = {t.status for t in purge_targets(POLICY) if t.table.name == "task"}
    assert statuses == {"SUCCESS", "FAILED", "TIMEOUT", "CANCELLED"}


async def test_the_leader_purges_and_counts_per_table(
    store: SqlStore, leader: Elector, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    old = await ended(store, S.SUCCESS, clock.now - 101, 2)
    young = await ended(store, S.FAILED, clock.now - 999)
    duty = retention(store, leader)
    with caplog.at_level(logging.INFO, "conveyor.scheduler.retention"):
        await duty.run_once(clock.now)
    assert await remaining(store, *(t.id for t in old + young)) == 1
    assert duty.removed == {"task": 2, "task_logs": 6}
    assert "retention removed 2 task, 6 task_logs" in caplog.text


async def test_a_standby_purges_nothing(
    store: SqlStore, standby: Elector, clock: Clock
) -> None:
    old = await ended(store, S.SUCCESS, clock.now - 101)
    duty = retention(store, standby)
    await duty.run_once(clock.now)
    assert await remaining(store, old[0].id) == 1 and duty.removed == {}


async def test_a_pass_stops_at_its_batch_cap_and_the_next_goes_on(
    store: SqlStore, leader: Elector, clock: Clock
) -> None:
    old = await ended(store, S.SUCCESS, clock.now - 101, 7)
    duty = retention(store, leader, batch=2, batches=2)
    await duty.run_once(clock.now)
    assert duty.removed["task"] == 4 and duty.behind
    await duty.run_once(clock.now)
    assert duty.removed["task"] == 7 and not duty.behind
    assert await remaining(store, *(t.id for t in old)) == 0


async def test_zero_turns_a_policy_off(store: SqlStore, leader: Elector, clock: Clock) -> None:
    old = await ended(store, S.SUCCESS, clock.now - 10**6)
    off = RetentionSettings(succeeded=0, failed=1000, logs=0)
    await retention(store, leader, policy=off).run_once(clock.now)
    assert await remaining(store, old[0].id) == 1
    assert len(await store.tasks.logs(old[0].id)) == 3


async def test_an_archive_that_cannot_write_keeps_the_rows(
    store: SqlStore, leader: Elector, clock: Clock, tmp_path: Path
) -> None:
    old = await ended(store, S.SUCCESS, clock.now - 101)
    archive = JsonlArchive(tmp_path / "archive")
    archive.check()
    shutil.rmtree(archive.directory)  # the disk went away after start
    duty = retention(store, leader, archive=archive)
    await duty.run_once(clock.now)
    assert await remaining(store, old[0].id) == 1 and duty.archive_failures == 1
    archive.check()
    await duty.run_once(clock.now)
    assert await remaining(store, old[0].id) == 0
    assert len((archive.path("task", clock.now)).read_text().splitlines()) == 1


def test_an_archive_dir_that_cannot_be_written_stops_the_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"retention.archive_dir .*a-file/archive"):
        JsonlArchive(blocker / "archive").check()


async def test_audit_rows_go_after_retention_audit(
    store: SqlStore, leader: Elector, clock: Clock
) -> None:
    from conveyor.audit import CLI, Action, AuditEntry, AuditQuery

    policy = RetentionSettings(succeeded=100, failed=1000, logs=10_000, audit=500)
    for age in (501, 499):
        entry = AuditEntry(CLI, Action.QUEUE_PAUSE, f"aged-{age}")
        await store.audit.write(entry, clock.now - age)
    duty = retention(store, leader, policy=policy)
    await duty.run_once(clock.now)
    kept = await store.audit.list_entries(AuditQuery(), None)
    assert [r.entry.target_id for r in kept.records] == ["aged-499"]
    assert duty.removed == {"audit_log": 1}

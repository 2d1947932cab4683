"""Schedule changes audited in their own transaction, on SQLite, MariaDB and PostgreSQL: put,
delete, pause and fire record the row with what they saw, only when the change applied, and
an audit row the database refuses rolls the change back."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.exc import IntegrityError

from conveyor.audit import Action, AuditQuery, schedule_view
from conveyor.errors import Conflict
from conveyor.schedules.model import FireKind
from conveyor.store.protocol import FireWrite
from conveyor.store.sql import SqlStore
from tests.contract.test_store_audit import bad, entry, rows
from tests.contract.test_store_schedules import NOW, fire, fire_task, schedule


async def test_put_pause_fire_and_delete_record_before_and_after(store: SqlStore) -> None:
    s = schedule()
    await store.schedules.put(s, audit=entry(Action.SCHEDULE_PUT, "nightly"))
    changed = replace(s, jitter=5.0)
    await store.schedules.put(changed, audit=entry(Action.SCHEDULE_PUT, "nightly"))
    assert await store.schedules.set_paused("default", "nightly", True, None, NOW,
                                            audit=entry(Action.SCHEDULE_PAUSE, "nightly"))
    stored = await store.schedules.get("default", "nightly")
    assert stored is not None
    manual = replace(fire(s, NOW), kind=FireKind.MANUAL)
    await store.schedules.fire([FireWrite(stored, [(manual, fire_task(s, NOW))], advance=False)],
                               NOW, audit=entry(Action.SCHEDULE_TRIGGER, "nightly"))
    assert await store.schedules.delete("default", "nightly",
                                        audit=entry(Action.SCHEDULE_DELETE, "nightly"))
    put1, put2, pause, trigger, delete = reversed(await rows(store, target_id="nightly"))
    assert (put1.before, put1.after) == (None, schedule_view(s))
    assert (put2.before, put2.after) == (schedule_view(s), schedule_view(changed))
    assert (pause.before, pause.after) == ({"paused": False}, {"paused": True})
    assert trigger.after["fires"] == 1 and trigger.after["outcome"] == "fired"
    assert trigger.after["task_id"] is not None and trigger.after["from"] == NOW
    assert delete.before == schedule_view(replace(changed, paused=True))
    assert delete.after is None and delete.actor.tenant == "default"


async def test_a_change_that_does_not_apply_writes_no_row(store: SqlStore) -> None:
    assert await store.schedules.set_paused(
        "default", "nothing", True, None, NOW,
        audit=entry(Action.SCHEDULE_PAUSE, "nothing")) is None
    assert not await store.schedules.delete("default", "nothing",
                                            audit=entry(Action.SCHEDULE_DELETE, "nothing"))
    assert await rows(store) == []


async def test_rows_are_filed_under_the_schedules_tenant(store: SqlStore) -> None:
    await store.schedules.put(schedule(tenant="acme"),
                              audit=entry(Action.SCHEDULE_PUT, "nightly"))  # a default admin
    assert await rows(store) == []
    page = await store.audit.list_entries(AuditQuery(), "acme")
    assert [r.entry.action for r in page.records] == ["schedule.put"]


async def test_a_refused_audit_row_rolls_the_change_back(store: SqlStore) -> None:
    s = schedule()
    with pytest.raises((Conflict, IntegrityError)):
        await store.schedules.put(s, audit=bad(Action.SCHEDULE_PUT, "nightly"))
    assert await store.schedules.get("default", "nightly") is None
    await store.schedules.put(s)
    with pytest.raises((Conflict, IntegrityError)):
        await store.schedules.put(replace(s, jitter=9.0),
                                  audit=bad(Action.SCHEDULE_PUT, "nightly"))
    with pytest.raises(IntegrityError):
        await store.schedules.set_paused("default", "nightly", True, None, NOW,
                                         audit=bad(Action.SCHEDULE_PAUSE, "nightly"))
    kept = await store.schedules.get("default", "nightly")
    assert kept is not None and (kept.jitter, kept.paused) == (0.0, False)
    write = FireWrite(kept, [(fire(s, NOW), fire_task(s, NOW))], advance=False)
    with pytest.raises((Conflict, IntegrityError)):  # a lost race, to fire: retried
        await store.schedules.fire([write], NOW, audit=bad(Action.SCHEDULE_BACKFILL, "nightly"))
    assert await store.schedules.fires("default", "nightly", 10) == []
    with pytest.raises(IntegrityError):
        await store.schedules.delete("default", "nightly",
                                     audit=bad(Action.SCHEDULE_DELETE, "nightly"))
    assert await store.schedules.get("default", "nightly") is not None
    assert await rows(store) == []

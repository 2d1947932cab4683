"""The store contract for the audit log, on SQLite, MariaDB and PostgreSQL: each audited
method writes its row in the transaction of its change, only when the change applied, and an
audit row the database refuses rolls the change back; the list filters by tenant in SQL."""

from __future__ import annotations

import time
from typing import cast

import pytest
from sqlalchemy.exc import IntegrityError

from conveyor.apikeys import ApiKey, Scope
from conveyor.audit import Action, Actor, AuditEntry, AuditQuery, key_created, key_revoked
from conveyor.errors import Conflict
from conveyor.models import Priority, TaskConfig, TaskStatus
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task

ADMIN = Actor("k-admin", "default", "10.0.0.7")


def entry(action: Action, target: str, actor: Actor = ADMIN) -> AuditEntry:
    return AuditEntry(actor, action, target)


def bad(action: Action, target: str) -> AuditEntry:
    """An entry the database refuses (a NOT NULL target), to prove the shared transaction."""
    return AuditEntry(ADMIN, action, cast(str, None))


async def rows(store: SqlStore, **filters: object) -> list[AuditEntry]:
    page = await store.audit.list_entries(AuditQuery(**filters), "default")  # type: ignore[arg-type]
    return [r.entry for r in page.records]


async def test_task_moves_write_their_row_with_before_and_after(store: SqlStore) -> None:
    t = make_task()
    await store.tasks.insert([t])
    now = time.time()
    assert await store.moves.set_priority(
        t.id, Priority.HIGH, now, audit=entry(Action.TASK_PRIORITY, t.id))
    assert await store.moves.cancel_pending(t.id, now, "by test",
                                            audit=entry(Action.TASK_CANCEL, t.id))
    assert await store.moves.reopen(t.id, now, "manual retry",
                                    audit=entry(Action.TASK_RETRY, t.id))
    retry, cancel, priority = await rows(store)
    assert priority.before == {"status": "PENDING", "priority": "normal", "attempt": 0}
    assert priority.after == {"status": "PENDING", "priority": "high", "attempt": 0}
    assert (cancel.before["status"], cancel.after["status"]) == ("PENDING", "CANCELLED")
    assert (retry.before["status"], retry.after["status"]) == ("CANCELLED", "PENDING")
    assert {r.actor for r in (retry, cancel, priority)} == {ADMIN}
    assert cancel.target_kind == "task" and cancel.target_id == t.id


async def test_a_move_that_does_not_apply_writes_no_row(store: SqlStore) -> None:
    t = make_task(status=TaskStatus.SUCCESS)
    await store.tasks.insert([t])
    now = time.time()
    assert await store.moves.cancel_pending(
        t.id, now, "x", audit=entry(Action.TASK_CANCEL, t.id)) is None
    assert await store.moves.set_priority(
        t.id, Priority.LOW, now, audit=entry(Action.TASK_PRIORITY, t.id)) is None
    assert await store.moves.reopen(
        "01NOSUCHTASK0000000000000", now, "x", audit=entry(Action.TASK_RETRY, "x")) is None
    assert await rows(store) == []


async def test_a_refused_audit_row_rolls_the_move_back(store: SqlStore) -> None:
    t = make_task()
    await store.tasks.insert([t])
    with pytest.raises(IntegrityError):
        await store.moves.cancel_pending(t.id, time.time(), "x",
                                         audit=bad(Action.TASK_CANCEL, t.id))
    kept = await store.tasks.get(t.id)
    assert kept is not None and kept.status == TaskStatus.PENDING
    assert [log.to_status for log in await store.tasks.logs(t.id)] == [TaskStatus.PENDING]
    assert await rows(store) == []


async def test_configs_record_before_and_after(store: SqlStore) -> None:
    first = TaskConfig("mail", executor="http", executor_config={"url": "http://m/"},
                       timeout=30.0, updated_at=1.0)
    await store.configs.put_config(first, audit=entry(Action.CONFIG_PUT, "mail"))
    second = TaskConfig("mail", executor="http", executor_config={"url": "http://m/"},
                        timeout=60.0, priority=Priority.HIGH, updated_at=2.0)
    await store.configs.put_config(second, audit=entry(Action.CONFIG_PUT, "mail"))
    assert await store.configs.delete_config("mail", audit=entry(Action.CONFIG_DELETE, "mail"))
    assert not await store.configs.delete_config("mail",
                                                 audit=entry(Action.CONFIG_DELETE, "mail"))
    deleted, updated, created = await rows(store)
    assert created.before is None and created.after["timeout"] == 30.0
    assert created.after["executor_config"] == {"url": "http://m/"}
    assert "task_type" not in created.after and "updated_at" not in created.after
    assert updated.before["timeout"] == 30.0 and updated.before["priority"] is None
    assert updated.after["timeout"] == 60.0 and updated.after["priority"] == "high"
    assert deleted.before == updated.after and deleted.after is None
    assert created.target_kind == "config" and created.target_id == "mail"


async def test_a_refused_audit_row_rolls_config_writes_back(store: SqlStore) -> None:
    config = TaskConfig("mail", timeout=30.0, updated_at=1.0)
    with pytest.raises((Conflict, IntegrityError)):
        await store.configs.put_config(config, audit=bad(Action.CONFIG_PUT, "mail"))
    assert await store.configs.get_config("mail") is None
    await store.configs.put_config(config)
    with pytest.raises((Conflict, IntegrityError)):
        await store.configs.put_config(TaskConfig("mail", timeout=9.0, updated_at=2.0),
                                       audit=bad(Action.CONFIG_PUT, "mail"))
    with pytest.raises(IntegrityError):
        await store.configs.delete_config("mail", audit=bad(Action.CONFIG_DELETE, "mail"))
    assert await store.configs.get_config("mail") == config
    assert await rows(store) == []


async def test_keys_record_create_and_revoke(store: SqlStore) -> None:
    cli = Actor(None, "default", "cli")
    key = ApiKey("k1", Scope.SUBMIT, "billing", created_at=1.0, secret_hash="a" * 64)
    await store.keys.put_key(key, audit=key_created(cli, key))
    with pytest.raises(Conflict):  # a taken id: nothing stored, no row
        await store.keys.put_key(key, audit=key_created(cli, key))
    assert await store.keys.revoke_key("k1", 5.0, audit=key_revoked(cli, "k1"))
    assert not await store.keys.revoke_key("k1", 6.0, audit=key_revoked(cli, "k1"))
    revoked, created = await rows(store)
    assert created.after == {"scope": "submit", "name": "billing"} and created.actor == cli
    assert (revoked.before, revoked.after) == ({"revoked_at": None}, {"revoked_at": 5.0})
    other = ApiKey("k2", Scope.READ, "x", created_at=1.0, secret_hash="b" * 64)
    with pytest.raises(IntegrityError):
        await store.keys.put_key(other, audit=bad(Action.KEY_CREATE, "k2"))
    assert await store.keys.get_key("k2") is None
    await store.keys.put_key(other)
    with pytest.raises(IntegrityError):
        await store.keys.revoke_key("k2", 7.0, audit=bad(Action.KEY_REVOKE, "k2"))
    assert await store.keys.get_key("k2") == other  # still active
    assert len(await rows(store)) == 2


async def test_a_revoke_across_tenants_is_filed_under_the_keys_tenant(store: SqlStore) -> None:
    """A superadmin (home tenant "default") revoking acme's key: acme's audit shows it."""
    key = ApiKey("k-a", Scope.SUBMIT, "acme billing", created_at=1.0, secret_hash="c" * 64,
                 tenant="acme")
    await store.keys.put_key(key)
    assert await store.keys.revoke_key("k-a", 5.0, None, audit=key_revoked(ADMIN, "k-a"))
    page = await store.audit.list_entries(AuditQuery(), "acme")
    [revoked] = [r.entry for r in page.records]
    assert revoked.target_id == "k-a" and revoked.actor.key_id == ADMIN.key_id
    assert await rows(store) == []


async def test_list_filters_pages_and_keeps_tenants_apart(store: SqlStore) -> None:
    other = Actor("k-other", "default", "10.0.0.8")
    acme = Actor("k-acme", "acme", "10.0.0.9")
    written = [
        (entry(Action.QUEUE_PAUSE, "low"), 10.0),
        (entry(Action.QUEUE_RESUME, "low", other), 20.0),
        (entry(Action.TASK_CANCEL, "t1"), 30.0),
        (entry(Action.TASK_CANCEL, "t2", other), 40.0),
        (entry(Action.TASK_CANCEL, "t1", acme), 50.0),
    ]
    for e, at in written:
        await store.audit.write(e, at)
    assert [e.target_id for e in await rows(store)] == ["t2", "t1", "low", "low"]
    assert [e.target_id for e in await rows(store, action="task.cancel")] == ["t2", "t1"]
    assert [e.actor for e in await rows(store, target_id="t1")] == [ADMIN]
    assert [e.action for e in await rows(store, key_id="k-other")] == [
        "task.cancel", "queue.resume"]
    assert [e.target_id for e in await rows(store, since=20.0, until=30.0)] == ["t1", "low"]
    everyone = await store.audit.list_entries(AuditQuery(), None)
    assert [r.entry.actor.tenant for r in everyone.records] == ["acme"] + ["default"] * 4
    acme_only = await store.audit.list_entries(AuditQuery(), "acme")
    assert [r.at for r in acme_only.records] == [50.0]

    seen, cursor = [], None
    while True:
        page = await store.audit.list_entries(AuditQuery(cursor=cursor, limit=3), "default")
        seen += page.records
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [r.at for r in seen] == [40.0, 30.0, 20.0, 10.0]
    assert len({r.id for r in seen}) == 4

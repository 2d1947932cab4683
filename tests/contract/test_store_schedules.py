"""The store contract for schedules and their fire history, on SQLite, MariaDB and PostgreSQL:
definitions per tenant, the due index, and ``fire``: once per fire, whoever records it."""

from __future__ import annotations

from dataclasses import replace

from conveyor.models import Priority, Task
from conveyor.schedules.cron import Trigger
from conveyor.schedules.model import (
    Fire,
    FireKind,
    FireOutcome,
    Overlap,
    Schedule,
    TaskTemplate,
    idempotency_key,
)
from conveyor.store.protocol import FireWrite
from conveyor.store.sql import SqlStore
from tests.contract.store_support import make_task

NOW = 1_800_000_000.0


def schedule(name: str = "nightly", tenant: str = "default", **changes: object) -> Schedule:
    s = Schedule(
        name=name, tenant=tenant,
        template=TaskTemplate("echo", {"x": 1}, Priority.HIGH, 30.0, 2, {"k": "v"}),
        trigger=Trigger(cron="*/5 * * * * *", timezone="Europe/Berlin"),
        overlap=Overlap.BUFFER_ONE, next_fire_at=NOW, created_at=NOW - 10, updated_at=NOW - 10,
    )
    return replace(s, **changes)  # type: ignore[arg-type]


def fire(s: Schedule, at: float, outcome: FireOutcome = FireOutcome.FIRED) -> Fire:
    return Fire(s.tenant, s.name, at, FireKind.SCHEDULED, outcome, recorded_at=NOW, epoch=3)


def fire_task(s: Schedule, at: float) -> Task:
    return make_task(s.template.task_type, idempotency_key=idempotency_key(s.name, at))


async def test_put_get_list_and_delete_per_tenant(store: SqlStore) -> None:
    a, b = schedule(), schedule(tenant="acme")
    await store.schedules.put(a)
    await store.schedules.put(b)
    got = await store.schedules.get("default", "nightly")
    assert got is not None and got.template == a.template and got.trigger == a.trigger
    assert (got.overlap, got.version, got.next_fire_at) == (Overlap.BUFFER_ONE, 0, NOW)
    assert [s.tenant for s in await store.schedules.list_schedules(None)] == ["acme", "default"]
    assert [s.tenant for s in await store.schedules.list_schedules("acme")] == ["acme"]
    await store.schedules.put(replace(a, template=replace(a.template, payload={"x": 2})))
    again = await store.schedules.get("default", "nightly")
    assert again is not None and again.template.payload == {"x": 2} and again.version == 1
    assert await store.schedules.delete("acme", "nightly")
    assert not await store.schedules.delete("acme", "nightly")
    assert await store.schedules.get("default", "nightly") is not None


async def test_due_and_next_due_come_from_next_fire_at(store: SqlStore) -> None:
    for i, at in enumerate([NOW + 5, NOW - 1, None, NOW]):
        await store.schedules.put(schedule(f"s{i}", next_fire_at=at))
    assert [s.name for s in await store.schedules.due(NOW, 10)] == ["s1", "s3"]
    assert [s.name for s in await store.schedules.due(NOW, 1)] == ["s1"]
    assert await store.schedules.next_due() == NOW - 1
    paused = await store.schedules.set_paused("default", "s1", True, None, NOW)
    assert paused is not None and paused.paused and paused.next_fire_at is None
    assert [s.name for s in await store.schedules.due(NOW, 10)] == ["s3"]


async def test_fire_records_tasks_and_moves_the_schedule_once(store: SqlStore) -> None:
    s = schedule()
    await store.schedules.put(s)
    [read] = await store.schedules.due(NOW, 10)
    write = FireWrite(read, [(fire(s, NOW), fire_task(s, NOW)),
                             (fire(s, NOW - 5, FireOutcome.MISSED), None)], NOW + 5)
    result = await store.schedules.fire([write], NOW)
    assert len(result.created) == 1 and not result.stale
    after = await store.schedules.get("default", "nightly")
    assert after is not None
    assert (after.next_fire_at, after.last_fire_at, after.missed) == (NOW + 5, NOW, 1)
    assert after.last_task_id == result.created[0].id
    # The same write again (a second leader, a retried pass): stale, nothing new.
    again = await store.schedules.fire([write], NOW)
    assert again.stale and not again.created
    # Planned afresh from the new row, the recorded fires stay as they are.
    repeat = FireWrite(after, [(fire(s, NOW), fire_task(s, NOW))], NOW + 5)
    third = await store.schedules.fire([repeat], NOW)
    assert not third.created and not third.recorded and not third.stale
    history = await store.schedules.fires("default", "nightly", 10)
    assert [(f.fire_at, f.outcome) for f in history] == [
        (NOW, FireOutcome.FIRED), (NOW - 5, FireOutcome.MISSED)]
    assert history[0].task_id == result.created[0].id and history[0].epoch == 3


async def test_a_buffered_fire_is_released_once(store: SqlStore) -> None:
    s = schedule()
    await store.schedules.put(s)
    [read] = await store.schedules.due(NOW, 10)
    await store.schedules.fire(
        [FireWrite(read, [(fire(s, NOW, FireOutcome.BUFFERED), None)], NOW + 5)], NOW)
    [waiting] = await store.schedules.with_buffered(10)
    assert waiting.buffered == 1
    [buffered] = await store.schedules.buffered_fires(waiting, 10)
    release = FireWrite(waiting, [(fire(s, buffered.fire_at), fire_task(s, NOW))],
                        waiting.next_fire_at)
    result = await store.schedules.fire([release], NOW + 1)
    assert len(result.created) == 1
    assert await store.schedules.with_buffered(10) == []
    [row] = await store.schedules.fires("default", "nightly", 10)
    assert row.outcome == FireOutcome.FIRED and row.task_id == result.created[0].id


async def test_fires_without_advancing_dedupe_against_scheduled_ones(store: SqlStore) -> None:
    """A backfill over fires that already happened creates nothing."""
    s = schedule()
    await store.schedules.put(s)
    [read] = await store.schedules.due(NOW, 10)
    first = await store.schedules.fire(
        [FireWrite(read, [(fire(s, NOW), fire_task(s, NOW))], NOW + 5)], NOW)
    backfill = FireWrite(read, [(fire(s, at), fire_task(s, at)) for at in (NOW - 5, NOW)],
                         advance=False)
    result = await store.schedules.fire([backfill], NOW + 2)
    assert [t.idempotency_key for t in result.created] == [idempotency_key(s.name, NOW - 5)]
    tasks = {t.id for t in first.created + result.created}
    history = await store.schedules.fires("default", "nightly", 10)
    assert {f.task_id for f in history} == tasks


async def test_the_task_key_holds_even_without_the_fire_row(store: SqlStore) -> None:
    s = schedule()
    await store.schedules.put(s)
    existing = fire_task(s, NOW)
    [created] = await store.tasks.insert([existing])
    [read] = await store.schedules.due(NOW, 10)
    result = await store.schedules.fire(
        [FireWrite(read, [(fire(s, NOW), fire_task(s, NOW))], NOW + 5)], NOW)
    assert result.created == []
    [row] = await store.schedules.fires("default", "nightly", 10)
    assert row.task_id == created.task.id


async def test_in_a_batch_only_the_changed_schedule_writes_nothing(store: SqlStore) -> None:
    a, b = schedule("a"), schedule("b")
    await store.schedules.put(a)
    await store.schedules.put(b)
    read_a, read_b = await store.schedules.due(NOW, 10)
    await store.schedules.put(replace(b, jitter=1.0))  # b changes after the leader read it
    result = await store.schedules.fire([
        FireWrite(read_a, [(fire(a, NOW), fire_task(a, NOW))], NOW + 5),
        FireWrite(read_b, [(fire(b, NOW), fire_task(b, NOW))], NOW + 5),
    ], NOW)
    assert [s.name for s in result.stale] == ["b"] and len(result.created) == 1
    after_a, after_b = await store.schedules.get("default", "a"), await store.schedules.get(
        "default", "b")
    assert after_a is not None and after_a.next_fire_at == NOW + 5 and after_a.version == 1
    assert after_b is not None and after_b.next_fire_at == NOW and after_b.last_fire_at is None
    assert await store.schedules.fires("default", "b", 10) == []

"""The catalog knows a type a worker announced: an API without the user's ``--app`` accepts
the user's types once a worker that runs them has registered (the record is durable, so a
worker restarting in a rolling deploy does not make the type unknown)."""

from __future__ import annotations

from conveyor.catalog import Catalog
from conveyor.config import Settings
from conveyor.models import WorkerInfo
from conveyor.store.sql import SqlStore

from .conftest import REGISTRATIONS, Clock


async def test_a_type_a_recorded_worker_runs_is_known_with_the_settings_defaults(
    store: SqlStore, settings: Settings, clock: Clock
) -> None:
    catalog = Catalog(store.configs, REGISTRATIONS, settings.tasks, clock=clock,
                      workers=store.workers)
    assert await catalog.spec("resize") is None

    info = WorkerInfo("w-app", "h", 1, 4, ("job", "resize"), 1.0)
    await store.workers.record_workers([info], "alive", clock.now)
    await store.workers.mark_worker("w-app", "stopped", clock.now)  # restarting: still known
    assert await catalog.spec("resize") is None  # the records are read at most every ttl
    clock.now += 2.0

    spec = await catalog.spec("resize")
    assert spec is not None
    assert (spec.executor, spec.timeout, spec.max_retries) == (
        "python", settings.tasks.timeout, settings.tasks.max_retries
    )
    assert await catalog.spec("thumbnail") is None

"""Task search in the console by idempotency key and by metadata: what matches, the errors a
half-filled form gets, the tenant a key sees, escaping, and a bulk action that follows the
same filter."""

from __future__ import annotations

from conveyor.apikeys import Scope
from conveyor.models import TaskStatus
from tests.contract.store_support import make_task
from tests.support.console import EVIL, Console, console, open_console

__all__ = ["console", "open_console"]  # fixtures


async def test_a_task_is_found_by_its_idempotency_key_and_type(open_console: Console) -> None:
    c = open_console
    wanted = await c.task(idempotency_key="order-42")
    other = await c.task(idempotency_key="order-43")
    page = await c.http.get("/ui/tasks", params={"type": "echo", "key": "order-42"})
    assert page.status_code == 200 and wanted in page.text and other not in page.text
    assert 'value="order-42"' in page.text  # the form keeps what was searched
    none = await c.http.get("/ui/tasks", params={"type": "echo", "key": "order-44"})
    assert "No task matches." in none.text
    alone = await c.http.get("/ui/tasks", params={"key": "order-42"})
    assert alone.status_code == 422 and "give the task type too" in alone.text
    bad = await c.http.get("/ui/tasks", params={"type": "echo", "key": "x", "tenant": "no pe"})
    assert bad.status_code == 422


async def test_a_key_spanning_tenants_names_the_tenant_a_key_is_looked_up_in(
    open_console: Console,
) -> None:
    c = open_console
    acme = make_task(idempotency_key="k1", tenant="acme")
    await c.parts.store.tasks.insert([acme])
    found = await c.http.get("/ui/tasks", params={"type": "echo", "key": "k1", "tenant": "acme"})
    assert acme.id in found.text and 'name="tenant"' in found.text
    default = await c.http.get("/ui/tasks", params={"type": "echo", "key": "k1"})
    assert acme.id not in default.text  # "default" unless named


async def test_a_tenant_key_finds_only_its_own_tenants_keys(console: Console) -> None:
    c = console
    await c.login(Scope.READ, tenant="bravo")
    acme = make_task(idempotency_key="k1", metadata={"order": "7"}, tenant="acme")
    mine = make_task(idempotency_key="k1", metadata={"order": "7"}, tenant="bravo")
    await c.parts.store.tasks.insert([acme, mine])
    for params in ({"type": "echo", "key": "k1", "tenant": "acme"}, {"meta": "order=7"}):
        page = await c.http.get("/ui/tasks", params=params)
        assert mine.id in page.text and acme.id not in page.text, params
        assert 'name="tenant"' not in page.text  # a tenant key has no tenant to choose


async def test_metadata_matches_a_whole_value_of_one_key(open_console: Console) -> None:
    c = open_console
    seven = await c.task(metadata={"order": "7", "region": "eu"})
    seventy = await c.task(metadata={"order": "70"})
    quoted = await c.task(metadata={"note": 'order":"7'})  # the pair inside another value
    hostile = await c.task(metadata={"order": EVIL})
    page = await c.http.get("/ui/tasks", params={"meta": " order = 7 "})
    assert seven in page.text
    assert seventy not in page.text and quoted not in page.text and hostile not in page.text
    evil = await c.http.get("/ui/tasks", params={"meta": f"order={EVIL}"})
    assert hostile in evil.text and EVIL not in evil.text and "&lt;script&gt;" in evil.text
    for bad in ("order", "=7"):
        refused = await c.http.get("/ui/tasks", params={"meta": bad})
        assert refused.status_code == 422 and "key=value" in refused.text, bad


async def test_bulk_cancel_of_a_metadata_search_takes_only_the_matching_tasks(
    open_console: Console,
) -> None:
    c = open_console
    batch = [await c.task(metadata={"batch": "b1"}) for _ in range(3)]
    kept = await c.task(metadata={"batch": "b2"})
    confirm = await c.http.get("/ui/tasks/bulk", params={"verb": "cancel", "meta": "batch=b1"})
    assert confirm.status_code == 200 and "<strong>3</strong>" in confirm.text
    done = await c.post("/ui/tasks/bulk", "/ui/tasks", verb="cancel", meta="batch=b1")
    assert done.status_code == 200, done.text
    for task_id in batch:
        assert (await c.parts.service.get(task_id)).status is TaskStatus.CANCELLED
    assert (await c.parts.service.get(kept)).status is TaskStatus.PENDING

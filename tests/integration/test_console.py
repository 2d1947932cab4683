"""The web console through the real app and store: every page and action, the login cookie,
scope enforcement (a read key sees no buttons and its forged POST is 403), CSRF, escaping of
untrusted strings, cursor paging, and the guards that still hold under ``/ui``."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from conveyor.api.app import create_app
from conveyor.apikeys import Scope, new_key
from conveyor.audit import AuditQuery
from conveyor.bootstrap import Components
from conveyor.console import bulk
from conveyor.console.snapshot import Snapshots
from conveyor.ids import new_id
from conveyor.models import Priority, Task, TaskConfig, TaskStatus, WorkerInfo
from conveyor.placement import place
from conveyor.sealing import unseal
from conveyor.service import TaskRequest
from conveyor.store.protocol import Outcome
from tests.support.console import EVIL, PAGES, Console, console, open_console

__all__ = ["console", "open_console"]  # fixtures

async def test_root_redirects_and_every_page_renders(open_console: Console) -> None:
    c = open_console
    root = await c.http.get("/")
    assert root.status_code == 307 and root.headers["location"] == "/ui"
    task_id = await c.task(payload={"x": 1})
    for path in [*PAGES, f"/ui/tasks/{task_id}", f"/ui/tasks/{task_id}/panel"]:
        page = await c.http.get(path)
        assert page.status_code == 200, (path, page.text)
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
    overview = (await c.http.get("/ui")).text
    assert 'data-state="PENDING">1<' in overview and 'hx-trigger="every 1s"' in overview
    assert "/ui/static/vendor/uplot/uPlot.iife.min.js" in overview
    detail = (await c.http.get(f"/ui/tasks/{task_id}")).text
    assert "PENDING" in detail and "created" in detail and 'data-action="Cancel"' in detail
    assert len(Console.csrf(await c.http.get(f"/ui/tasks/{task_id}"))["csrf_token"]) >= 32
    assert (await c.http.get("/ui/static/vendor/htmx/htmx.min.js")).status_code == 200
    assert (await c.http.get("/ui/login")).status_code == 303  # nothing to log in to


async def test_a_page_without_a_key_asks_for_one(console: Console) -> None:
    c = console
    for path in PAGES:
        page = await c.http.get(path)
        assert page.status_code == 303 and page.headers["location"] == "/ui/login", path
    fragment = await c.http.get("/ui/overview/live", headers={"HX-Request": "true"})
    assert fragment.status_code == 204 and fragment.headers["hx-redirect"] == "/ui/login"
    form = await c.http.get("/ui/login")
    bad = await c.http.post("/ui/login", data={"key": "cvk_nope_nope", **c.csrf(form)})
    assert bad.status_code == 401 and "not valid" in bad.text
    assert "conveyor_key" not in bad.headers.get("set-cookie", "")


async def test_login_keeps_the_key_in_a_strict_httponly_cookie(console: Console) -> None:
    c = console
    form = await c.http.get("/ui/login")
    key, token = new_key(Scope.READ, "r", time.time())
    await c.parts.store.keys.put_key(key)
    done = await c.http.post("/ui/login", data={"key": token, **c.csrf(form)})
    cookies = done.headers.get_list("set-cookie")
    [kept] = [h for h in cookies if h.startswith("conveyor_key=")]
    assert "HttpOnly" in kept and "SameSite=strict" in kept and "Path=/ui" in kept
    assert token not in done.headers["location"]
    assert c.csrf(form)["csrf_token"] not in " ".join(cookies)  # a new token after login
    page = await c.http.get("/ui")
    assert page.status_code == 200 and key.key_id in page.text
    assert token not in page.text  # the key is never written into a page
    out = await c.post("/ui/logout", "/ui")
    assert out.status_code == 303
    assert (await c.http.get("/ui")).status_code == 303


async def test_a_login_form_without_its_token_is_refused(console: Console) -> None:
    key, token = new_key(Scope.ADMIN, "a", time.time())
    await console.parts.store.keys.put_key(key)
    forged = await console.http.post("/ui/login", data={"key": token})
    assert forged.status_code == 403 and "CSRF" in forged.text


async def test_a_read_key_sees_no_button_and_its_forged_post_is_refused(console: Console) -> None:
    c = console
    task_id = await c.task()
    failed = await c.task()
    await c.login(Scope.READ)
    for path in ("/ui/tasks", f"/ui/tasks/{task_id}", "/ui/queues"):
        page = await c.http.get(path)
        assert page.status_code == 200 and "data-action=" not in page.text, path
    for verb in ("cancel", "retry", "priority"):
        forged = await c.post(f"/ui/tasks/{task_id}/{verb}", priority="high")
        assert forged.status_code == 403, forged.text
    assert (await c.post("/ui/queues/low/pause")).status_code == 403
    assert (await c.parts.service.get(task_id)).status == TaskStatus.PENDING
    assert "low" not in await c.parts.coordination.queues.paused()
    assert failed


async def test_cancel_retry_and_priority_need_the_csrf_token(console: Console) -> None:
    c = console
    task_id = await c.task()
    await c.login(Scope.SUBMIT)
    theirs = await c.post(f"/ui/tasks/{task_id}/cancel")
    assert theirs.status_code == 403 and "another API key" in theirs.text  # as on the API
    await c.login(Scope.ADMIN)
    assert (await c.http.post(f"/ui/tasks/{task_id}/cancel")).status_code == 403
    wrong = await c.http.post(f"/ui/tasks/{task_id}/cancel", data={"csrf_token": "x" * 43})
    assert wrong.status_code == 403 and "CSRF" in wrong.text
    assert (await c.parts.service.get(task_id)).status == TaskStatus.PENDING

    moved = await c.post(f"/ui/tasks/{task_id}/priority", priority="high")
    assert moved.status_code == 303 and moved.headers["location"] == f"/ui/tasks/{task_id}"
    assert (await c.parts.service.get(task_id)).priority == Priority.HIGH
    bad = await c.post(f"/ui/tasks/{task_id}/priority", priority="urgent")
    assert bad.status_code == 422 and "priority" in bad.text

    cancelled = await c.post(f"/ui/tasks/{task_id}/cancel", next="/ui/tasks?status=PENDING")
    assert cancelled.status_code == 303 and cancelled.headers["location"] == (
        "/ui/tasks?status=PENDING")
    assert (await c.parts.service.get(task_id)).status == TaskStatus.CANCELLED
    again = await c.post(f"/ui/tasks/{task_id}/cancel")
    assert again.status_code == 409 and "cannot be cancelled" in again.text

    retried = await c.post(f"/ui/tasks/{task_id}/retry", next="//evil.example/x")
    assert retried.status_code == 303 and retried.headers["location"] == f"/ui/tasks/{task_id}"
    assert (await c.parts.service.get(task_id)).status == TaskStatus.PENDING
    audit = await c.parts.store.audit.list_entries(AuditQuery(target_id=task_id), None)
    assert {str(r.entry.action) for r in audit.records} == {"task.cancel", "task.retry",
                                                       "task.priority"}


async def test_pause_and_resume_by_an_admin(console: Console) -> None:
    c = console
    await c.login(Scope.ADMIN)
    paused = await c.post("/ui/queues/low/pause", "/ui/queues")
    assert paused.status_code == 303 and paused.headers["location"] == "/ui/queues"
    assert "low" in await c.parts.coordination.queues.paused()
    page = (await c.http.get("/ui/queues")).text
    assert 'data-queue="low"' in page and "Resume" in page
    assert (await c.post("/ui/queues/low/resume", "/ui/queues")).status_code == 303
    assert "low" not in await c.parts.coordination.queues.paused()
    bad = await c.post("/ui/queues/no such/pause", "/ui/queues")
    assert bad.status_code == 422


async def test_untrusted_strings_are_escaped_everywhere(open_console: Console) -> None:
    c = open_console
    store = c.parts.store
    now = time.time()
    evil = Task(new_id(now), EVIL, Priority.NORMAL, {"x": EVIL, EVIL: 1}, TaskStatus.PENDING,
                0, 30.0, now, now, metadata={EVIL: EVIL}, idempotency_key=EVIL)
    await store.tasks.insert([evil])
    await store.moves.start([evil.id], "w-1", now)
    await store.moves.finish([Outcome(evil.id, 1, TaskStatus.FAILED, error=EVIL,
                                      message=EVIL, worker_id="w-1")], now)
    for path in [*PAGES, f"/ui/tasks/{evil.id}", f"/ui/tasks/{evil.id}/panel",
                 f"/ui/tasks?type=x&created_from={EVIL}"]:
        page = await c.http.get(path)
        assert "<script>alert" not in page.text, path
    detail = (await c.http.get(f"/ui/tasks/{evil.id}")).text
    assert detail.count("&lt;script&gt;") >= 5  # type, payload, metadata, key, error, log


async def test_search_filters_and_pages_with_a_cursor(open_console: Console) -> None:
    c = open_console
    made = [await c.task(payload={"i": i}) for i in range(55)]
    first = await c.http.get("/ui/tasks?type=echo&status=PENDING")
    assert first.text.count('<tr data-task="') == 50
    found = re.search(r'href="(/ui/tasks\?[^"]*cursor=[^"]+)"', first.text)
    assert found
    second = await c.http.get(found.group(1).replace("&amp;", "&"))
    assert second.text.count('<tr data-task="') == 5 and "Next page" not in second.text
    assert made[0] in second.text
    assert "No task matches." in (await c.http.get("/ui/tasks?status=SUCCESS")).text
    opened = await c.http.get(f"/ui/tasks?id={made[3]}")
    assert opened.status_code == 303 and opened.headers["location"] == f"/ui/tasks/{made[3]}"
    assert (await c.http.get(f"/ui/tasks?id={new_id(time.time())}")).status_code == 404
    assert (await c.http.get("/ui/tasks?status=LOST")).status_code == 422
    assert (await c.http.get("/ui/tasks?created_from=yesterday")).status_code == 422
    assert (await c.http.get("/ui/tasks?cursor=nope")).status_code == 422
    future = await c.http.get("/ui/tasks?created_from=2999-01-01T00:00")
    assert "No task matches." in future.text


async def test_the_request_guards_still_hold_under_ui(open_console: Console) -> None:
    c = open_console
    task_id = await c.task()
    page = await c.http.get("/ui/tasks")
    foreign = await c.http.post(f"/ui/tasks/{task_id}/cancel", data=c.csrf(page),
                                headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    form_to_api = await c.http.post(f"/api/v1/tasks/{task_id}/cancel", data={"a": "b"})
    assert form_to_api.status_code == 415  # the API itself still takes only JSON
    assert (await c.parts.service.get(task_id)).status == TaskStatus.PENDING


async def test_a_key_of_another_tenant_sees_only_its_own(console: Console) -> None:
    c = console
    theirs = await c.task(payload={"secret": "acme"})
    await c.login(Scope.ADMIN, tenant="bravo")
    assert theirs not in (await c.http.get("/ui/tasks")).text
    assert (await c.http.get(f"/ui/tasks/{theirs}")).status_code == 404
    assert 'data-state="PENDING">0<' in (await c.http.get("/ui")).text
    assert (await c.post("/ui/queues/low/pause")).status_code == 403  # every tenant's queues
    now = time.time()
    orphan = Task(new_id(now - 60), "echo", Priority.NORMAL, {}, TaskStatus.PENDING, 3, 30.0,
                  now - 60, now - 60, tenant="acme")
    await c.parts.store.tasks.insert([orphan])
    drift = await c.http.get("/ui/drift")
    assert drift.status_code == 200 and orphan.id not in drift.text


async def test_bulk_cancel_of_every_task_matching_a_filter(console: Console) -> None:
    c = console
    delayed = [await c.task(delay=3600.0) for _ in range(4)]
    await c.login(Scope.ADMIN)
    page = await c.http.get("/ui/tasks?status=PENDING")
    assert 'data-bulk="cancel"' in page.text
    ask = await c.http.get("/ui/tasks/bulk?verb=cancel&status=PENDING")
    assert ask.status_code == 200 and "<strong>4</strong> of the 4 matching" in ask.text
    nothing = await c.http.get("/ui/tasks/bulk?verb=retry&status=PENDING")
    assert "<strong>0</strong> of the 4" in nothing.text and 'data-action="Confirm"' not in (
        nothing.text)
    assert (await c.http.get("/ui/tasks/bulk?verb=explode")).status_code == 422
    forged = await c.http.post("/ui/tasks/bulk", data={"verb": "cancel", "status": "PENDING"})
    assert forged.status_code == 403  # no CSRF token
    done = await c.http.post("/ui/tasks/bulk", data={
        "verb": "cancel", "status": "PENDING", **c.csrf(ask)})
    assert done.status_code == 200 and "<strong>4</strong> task(s) cancelled" in done.text
    for task_id in delayed:
        assert (await c.parts.service.get(task_id)).status == TaskStatus.CANCELLED


async def test_bulk_retry_of_the_checked_tasks(console: Console) -> None:
    c = console
    ids = [await c.task(delay=3600.0) for _ in range(3)]
    for task_id in ids:
        await c.parts.service.cancel(task_id)
    await c.login(Scope.READ)
    listing = await c.http.get("/ui/tasks")
    assert 'form="selection"' not in listing.text and "data-bulk" not in listing.text
    refused = await c.post("/ui/tasks/selected", verb="retry", id=ids[0])
    assert refused.status_code == 403
    assert (await c.http.get("/ui/tasks/bulk?verb=retry")).status_code == 403
    await c.login(Scope.ADMIN)
    listing = await c.http.get("/ui/tasks")
    assert listing.text.count('form="selection"') == 3
    token = c.csrf(listing)
    done = await c.http.post("/ui/tasks/selected", content=(
        f"csrf_token={token['csrf_token']}&verb=retry&id={ids[0]}&id={ids[2]}&id=nonsense"),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and "<strong>2</strong> task(s) retried, 1 skipped" in done.text
    states = [(await c.parts.service.get(i)).status for i in ids]
    assert states == [TaskStatus.PENDING, TaskStatus.CANCELLED, TaskStatus.PENDING]


async def test_a_large_bulk_goes_in_batches(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bulk, "MAX_BULK", 3)
    c = console
    ids = [await c.task(delay=3600.0) for _ in range(5)]
    await c.login(Scope.ADMIN)
    ask = await c.http.get("/ui/tasks/bulk?verb=cancel")
    assert "<strong>3</strong> of the 3+ matching" in ask.text
    done = await c.http.post("/ui/tasks/bulk", data={"verb": "cancel", **c.csrf(ask)})
    assert "<strong>3</strong> task(s) cancelled" in done.text
    found = re.search(r'href="(/ui/tasks/bulk\?[^"]+cursor=[^"]+)"', done.text)
    assert found
    rest = await c.http.get(found.group(1).replace("&amp;", "&"))
    assert "<strong>2</strong> of the 2 matching" in rest.text
    cursor = re.search(r'name="cursor" value="([^"]+)"', rest.text)
    assert cursor
    await c.http.post("/ui/tasks/bulk", data={"verb": "cancel", "cursor": cursor.group(1),
                                              **c.csrf(rest)})
    assert {(await c.parts.service.get(i)).status for i in ids} == {TaskStatus.CANCELLED}


async def test_drift_shows_what_the_sweepers_will_repair(open_console: Console) -> None:
    c = open_console
    store, now = c.parts.store, time.time()

    def old(i: int, tenant: str = "default") -> Task:
        return Task(new_id(now - 60 + i), "echo", Priority.NORMAL, {}, TaskStatus.PENDING, 3,
                    30.0, now - 60, now - 60, tenant=tenant)

    lost, queued, running = old(0), old(1), old(2)
    await store.tasks.insert([lost, queued, running])
    await place(c.parts.coordination.queues, [queued], now)
    await store.moves.start([running.id], "w-gone", now)
    gone = WorkerInfo("w-gone", "h", 1, 4, started_at=now - 100, last_heartbeat=now - 50)
    await store.workers.record_workers([gone], "dead", now)
    page = await c.http.get("/ui/drift")
    assert page.status_code == 200 and 'href="/ui/drift" class="active"' in page.text
    assert f'data-task="{lost.id}"' in page.text and f'data-task="{queued.id}"' not in page.text
    assert "<strong>1</strong> of 2 pending rows" in page.text
    assert "w-gone" in page.text and f'data-task="{running.id}"' in page.text


async def test_an_admin_edits_a_config_and_its_secrets_stay_sealed(console: Console) -> None:
    c = console
    svc = c.parts.service
    await svc.put_config(TaskConfig("send_mail", "http", {
        "url": "http://mail.test/send", "headers": {"Authorization": "Bearer s3cr3t"}}))
    await c.login(Scope.READ)
    form = await c.http.get("/ui/configs/send_mail")
    assert form.status_code == 200 and 'data-action="Save"' not in form.text
    assert "s3cr3t" not in form.text and "***" in form.text
    assert (await c.post("/ui/configs/send_mail", "/ui/queues", timeout_seconds="5")
            ).status_code == 403
    await c.login(Scope.ADMIN)
    queues = await c.http.get("/ui/queues")
    assert 'href="/ui/configs/send_mail"' in queues.text
    saved = await c.post("/ui/configs/send_mail", "/ui/configs/send_mail", timeout_seconds="45",
                         max_retries="2", priority="high", rate_limit="2.5", enabled="on")
    assert saved.status_code == 303, saved.text
    stored = await svc.get_config("send_mail")
    assert (stored.timeout, stored.max_retries, stored.priority, stored.rate_limit,
            stored.concurrency_limit, stored.enabled) == (45.0, 2, Priority.HIGH, 2.5, None, True)
    opened = unseal(stored.executor_config, svc.keyring.opening)
    assert opened["headers"]["Authorization"] == "Bearer s3cr3t"
    for bad in ({"timeout_seconds": "soon"}, {"max_retries": "-1"}, {"priority": "urgent"}):
        refused = await c.post("/ui/configs/send_mail", "/ui/configs/send_mail", **bad)
        assert refused.status_code == 422, (bad, refused.text)
        assert next(iter(bad)) in refused.text
    off = await c.post("/ui/configs/send_mail", "/ui/configs/send_mail")
    assert off.status_code == 303 and (await svc.get_config("send_mail")).enabled is False
    assert (await c.http.get("/ui/configs/never_made")).status_code == 404


async def test_a_stale_snapshot_is_served_while_one_read_renews_it(parts: Components) -> None:
    app = create_app(parts.service)
    snapshots = Snapshots(app.state.operations, parts.service, max_age=0.05)
    first = await snapshots.get(None)
    assert await snapshots.get(None) is first  # young: served as it is
    await asyncio.sleep(0.1)
    await c_task(parts)
    assert await snapshots.get(None) is first  # stale: still served, a read is started
    for _ in range(100):
        await asyncio.sleep(0.01)
        if (renewed := await snapshots.get(None)) is not first:
            break
    assert renewed.at > first.at and renewed.stats.by_status == {"PENDING": 1}
    assert snapshots.age_limit(None) >= 0.05


async def c_task(parts: Components) -> None:
    await parts.service.submit([TaskRequest("echo")])

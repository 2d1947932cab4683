"""The console in a real headless Chromium (Debian's, driven by Playwright; never
``playwright install``) against a real ``conveyor standalone`` with keys required and tasks
in every state: every page loads with no JavaScript error and nothing asked of the network,
the overview's chart moves while tasks are created, cancel / retry / pause / resume clicked
in the browser change what the API then reports, and a read key sees no button. A screenshot
of each page is left in the test's tmp dir."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.e2e.test_standalone import Standalone, run_cli, wait_until

pytestmark = pytest.mark.slow
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass
class Fleet:
    server: Standalone
    admin: str
    read: str
    tasks: dict[str, str] = field(default_factory=dict)  # state → a task id in it
    workflows: dict[str, str] = field(default_factory=dict)  # "done" / "running" → an id

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=10,
                            headers={"Authorization": f"Bearer {self.admin}"})

    def task(self, task_id: str) -> dict[str, Any]:
        with self.api() as http:
            found: dict[str, Any] = http.get(f"/api/v1/tasks/{task_id}").json()
            return found


class KeyedStandalone(Standalone):
    """A standalone that requires keys: its readiness probe brings one."""

    key = ""

    def _answers(self) -> bool:
        assert self.proc is not None
        try:
            workers = httpx.get(f"{self.url}/api/v1/workers", timeout=2,
                                headers={"Authorization": f"Bearer {self.key}"})
            return any(w["pid"] == self.proc.pid for w in workers.json()["workers"])
        except (httpx.TransportError, ValueError, KeyError):
            return False


def _key(db: Path, scope: str) -> str:
    made = run_cli("apikey", "create", "--scope", scope, "--json", "--db", str(db))
    assert made.returncode == 0, made.stderr
    key: str = json.loads(made.stdout)["key"]
    return key


def _create(http: httpx.Client, **body: Any) -> str:
    made = http.post("/api/v1/tasks", json=body)
    assert made.status_code == 201, made.text
    task_id: str = made.json()["task_id"]
    return task_id


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    home = tmp_path_factory.mktemp("console")
    env = {"CONVEYOR_AUTH_REQUIRED": "true", "CONVEYOR_SCHEDULER__TIMEOUT_CHECK_INTERVAL": "0.5"}
    db = home / "conveyor.db"
    assert run_cli("migrate", "--db", str(db)).returncode == 0
    server = KeyedStandalone(home, db, env=env)
    server.key = _key(db, "admin")
    try:
        server.start()
        yield from _filled(Fleet(server, server.key, _key(db, "read")))
    finally:
        server.kill()


def _workflow(http: httpx.Client, name: str, seconds: float) -> str:
    """A diamond: fetch, then left and right, then join; each a ``sleep`` of ``seconds``."""
    node = {"task_type": "sleep", "payload": {"seconds": seconds}}
    made = http.post("/api/v1/workflows", json={"name": name, "tasks": {
        "fetch": node, "left": {**node, "after": ["fetch"]},
        "right": {**node, "after": ["fetch"]}, "join": {**node, "after": ["left", "right"]}}})
    assert made.status_code == 201, made.text
    flow_id: str = made.json()["workflow_id"]
    return flow_id


def _filled(f: Fleet) -> Iterator[Fleet]:
    """Tasks in every state, a schedule, two workflows and an http task config."""
    with f.api() as http:
        f.tasks["SUCCESS"] = _create(http, task_type="echo", payload={"hello": "console"})
        f.tasks["FAILED"] = _create(http, task_type="fail", payload={"permanent": True})
        f.tasks["PROCESSING"] = _create(http, task_type="sleep", payload={"seconds": 120})
        f.tasks["TIMEOUT"] = _create(http, task_type="sleep", payload={"seconds": 60},
                                     timeout_seconds=1, max_retries=0)
        f.tasks["PENDING"] = _create(http, task_type="echo", delay_seconds=3600)
        f.tasks["CANCELLED"] = _create(http, task_type="echo", delay_seconds=3600)
        assert http.post(f"/api/v1/tasks/{f.tasks['CANCELLED']}/cancel").status_code == 200
        http.put("/api/v1/schedules/nightly", json={
            "task_type": "echo", "cron": "0 3 * * *", "paused": True})
        f.workflows["done"] = _workflow(http, "nightly-report", 0)
        f.workflows["running"] = _workflow(http, "long-import", 120)
        put = http.put("/api/v1/task-configs/mailer", json={"executor": "http", "executor_config": {
            "url": "http://mail.test/send", "headers": {"Authorization": "Bearer s3cr3t"}}})
        assert put.status_code in (200, 201), put.text
    for state, task_id in f.tasks.items():
        wait_until(lambda s=state, t=task_id: f.task(t)["status"] == s, 30, state)
    yield f


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    found = shutil.which("chromium")
    assert found, "Debian's chromium is missing: run `bash scripts/setup.sh --dev`"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=found, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Tab:
    page: Page
    errors: list[str]
    refused: list[str]


def _tab(browser: Browser, fleet: Fleet, key: str) -> Iterator[Tab]:
    """A logged-in page, offline: every request off this machine is aborted and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = Tab(context.new_page(), [], [])

    def only_loopback(route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("http", "https") and url.hostname not in LOOPBACK:
            tab.refused.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    context.route("**/*", only_loopback)
    tab.page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.page.on("pageerror", lambda e: tab.errors.append(str(e)))
    tab.page.goto(f"{fleet.server.url}/ui")
    tab.page.wait_for_url("**/ui/login")
    tab.page.fill("input[name=key]", key)
    tab.page.click("form.login button")
    tab.page.wait_for_url(f"{fleet.server.url}/ui")
    try:
        yield tab
    finally:
        context.close()
        assert tab.errors == [] and tab.refused == []


@pytest.fixture
def admin_tab(browser: Browser, fleet: Fleet) -> Iterator[Tab]:
    yield from _tab(browser, fleet, fleet.admin)


@pytest.fixture
def read_tab(browser: Browser, fleet: Fleet) -> Iterator[Tab]:
    yield from _tab(browser, fleet, fleet.read)


def test_every_page_loads_without_errors(admin_tab: Tab, fleet: Fleet, tmp_path: Path) -> None:
    page, base = admin_tab.page, fleet.server.url
    pages = {"overview": "/ui", "tasks": "/ui/tasks", "queues": "/ui/queues",
             "workers": "/ui/workers", "schedules": "/ui/schedules", "drift": "/ui/drift",
             "task": f"/ui/tasks/{fleet.tasks['FAILED']}",
             "running": f"/ui/tasks/{fleet.tasks['PROCESSING']}",
             "workflows": "/ui/workflows", "workflow": f"/ui/workflows/{fleet.workflows['done']}",
             "config": "/ui/configs/mailer"}
    for name, path in pages.items():
        page.goto(base + path)
        page.locator("main h1").first.wait_for()
        page.wait_for_timeout(1200)  # a live refresh or two
        page.screenshot(path=str(tmp_path / f"console-{name}.png"), full_page=True)
    page.goto(f"{base}/ui/tasks")
    for state, task_id in fleet.tasks.items():
        row = page.locator(f'tr[data-task="{task_id}"]')
        assert state in row.inner_text()
    assert "nightly" in (page.goto(f"{base}/ui/schedules") and page.content())
    wait_until(lambda: _flow(fleet, fleet.workflows["done"])["state"] == "SUCCESS", 30, "done")
    page.goto(f"{base}/ui/workflows/{fleet.workflows['done']}")
    assert page.locator("#workflow-graph rect.n-success").count() == 4
    assert page.locator("#workflow-graph path.edge").count() == 4
    page.screenshot(path=str(tmp_path / "console-workflow.png"), full_page=True)
    page.goto(f"{base}/ui/drift")
    page.locator("#drift-chart[data-drawn='1'] canvas").wait_for()


def _flow(fleet: Fleet, flow_id: str) -> dict[str, Any]:
    with fleet.api() as http:
        found: dict[str, Any] = http.get(f"/api/v1/workflows/{flow_id}").json()
        return found


def test_workflow_cancel_retry_and_an_executor_edit_clicked(admin_tab: Tab, fleet: Fleet) -> None:
    page, base = admin_tab.page, fleet.server.url
    flow = fleet.workflows["running"]
    page.goto(f"{base}/ui/workflows/{flow}")
    page.click("button[data-action='Cancel workflow']")
    page.locator("#workflow-state", has_text="CANCELLED").wait_for()
    assert _flow(fleet, flow)["state"] == "CANCELLED"
    page.click("button[data-action='Retry workflow']")
    page.locator("#workflow-state", has_text="RUNNING").wait_for()
    assert _flow(fleet, flow)["state"] == "RUNNING"

    page.goto(f"{base}/ui/configs/mailer")
    shown = page.input_value("textarea[name=executor_config]")
    assert "s3cr3t" not in shown and "***" in shown
    page.fill("textarea[name=executor_config]", shown.replace("mail.test/send", "mail.test/v2"))
    page.click("button[data-action=Save]")
    page.locator("main h1").first.wait_for()
    with fleet.api() as http:
        config = http.get("/api/v1/task-configs/mailer").json()
    assert config["executor_config"]["url"] == "http://mail.test/v2"
    assert config["executor_config"]["headers"]["Authorization"] == "***"  # kept, sealed


def test_the_overview_chart_moves_while_tasks_run(
    admin_tab: Tab, fleet: Fleet, tmp_path: Path,
) -> None:
    page = admin_tab.page
    chart = page.locator("#rates-chart")
    chart.locator("canvas").wait_for()
    with fleet.api() as http:
        for _ in range(20):
            _create(http, task_type="echo")
            time.sleep(0.1)
    page.wait_for_function(
        "() => parseFloat(document.getElementById('rates-chart').dataset.peak || 0) > 0",
        timeout=10_000)
    first = int(chart.get_attribute("data-points") or 0)
    # A point per fresh snapshot: each second, or less often while the store answers slowly.
    page.wait_for_function(
        f"() => parseInt(document.getElementById('rates-chart').dataset.points) >= {first + 2}",
        timeout=15_000)
    page.screenshot(path=str(tmp_path / "console-overview-moving.png"), full_page=True)


def test_cancel_retry_pause_and_resume_clicked(admin_tab: Tab, fleet: Fleet) -> None:
    page, base = admin_tab.page, fleet.server.url
    pending = fleet.tasks["PENDING"]
    page.goto(f"{base}/ui/tasks/{pending}")
    page.click("button[data-action=Cancel]")
    page.locator("#task-state", has_text="CANCELLED").wait_for()
    assert fleet.task(pending)["status"] == "CANCELLED"

    failed = fleet.tasks["FAILED"]
    page.goto(f"{base}/ui/tasks/{failed}")
    page.click("button[data-action=Retry]")
    wait_until(lambda: fleet.task(failed)["attempt"] == 2, 15, "the retried attempt")

    page.goto(f"{base}/ui/queues")
    page.click('tr[data-queue="low"] button[data-action=Pause]')
    page.locator('tr[data-queue="low"] button[data-action=Resume]').wait_for()
    with fleet.api() as http:
        assert "low" in http.get("/api/v1/queues").json()["paused"]
        page.click('tr[data-queue="low"] button[data-action=Resume]')
        page.locator('tr[data-queue="low"] button[data-action=Pause]').wait_for()
        assert "low" not in http.get("/api/v1/queues").json()["paused"]


def test_a_read_key_sees_no_button(read_tab: Tab, fleet: Fleet, tmp_path: Path) -> None:
    page, base = read_tab.page, fleet.server.url
    for path in ("/ui/tasks", f"/ui/tasks/{fleet.tasks['PROCESSING']}", "/ui/queues"):
        page.goto(base + path)
        page.locator("main h1").first.wait_for()
        assert page.locator("button[data-action]").count() == 0, path
    page.screenshot(path=str(tmp_path / "console-read-key-queues.png"), full_page=True)


def test_a_worker_drained_by_a_click_idles(admin_tab: Tab, fleet: Fleet) -> None:
    """Last: the standalone's only worker takes nothing more afterwards."""
    page, base = admin_tab.page, fleet.server.url
    page.goto(f"{base}/ui/workers")
    page.click("#live-workers button[data-action=Drain]")
    with fleet.api() as http:
        wait_until(lambda: all(w["draining"] for w in http.get("/api/v1/workers").json()[
            "workers"]), 15, "the worker draining")
    page.goto(f"{base}/ui/workers")
    assert page.locator("#live-workers button[data-action=Drain]").count() == 0

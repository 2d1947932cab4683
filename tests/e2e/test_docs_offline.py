"""``/docs`` and ``/redoc`` render in a real headless Chromium with every request off this
machine refused: the pages need nothing but the running ``conveyor standalone``.

Before, both pages loaded Swagger UI / ReDoc from a CDN and stayed blank offline. The browser
is Debian's ``chromium`` (``scripts/setup.sh --dev`` installs it; Playwright's own browser
download is not used), driven through Playwright; a screenshot of each page is left in the
test's tmp dir.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.e2e.test_standalone import Standalone, standalone

pytestmark = pytest.mark.slow
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "Debian's chromium is missing: run `bash scripts/setup.sh --dev`"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    home = tmp_path_factory.mktemp("docs")
    with standalone(home, home / "conveyor.db") as running:
        yield running


@pytest.fixture
def offline_page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A page whose every request to a host other than loopback is aborted (and recorded)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    refused: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https") and urlsplit(url).hostname not in LOOPBACK:
            refused.append(url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    context.route("**/*", only_loopback)
    page = context.new_page()
    try:
        yield page, refused
    finally:
        context.close()


def test_swagger_ui_renders_the_operations_offline(
    server: Standalone, offline_page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    page, refused = offline_page
    page.goto(f"{server.url}/docs")
    page.locator(".opblock").first.wait_for(timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/tasks" in paths, paths
    assert len(paths) >= 10, paths
    assert page.locator(".info .title").inner_text().startswith("Conveyor")
    page.screenshot(path=str(tmp_path / "swagger-ui.png"), full_page=False)
    assert refused == []  # nothing was even asked of the outside


def test_redoc_renders_offline(
    server: Standalone, offline_page: tuple[Page, list[str]], tmp_path: Path
) -> None:
    page, refused = offline_page
    page.goto(f"{server.url}/redoc")
    page.locator("h1").first.wait_for(timeout=20_000)
    assert page.locator("h1").first.inner_text().startswith("Conveyor")
    page.get_by_text("/api/v1/tasks", exact=False).first.wait_for(timeout=10_000)
    menu = page.locator("[role=menuitem], .menu-content li").all_inner_texts()
    assert len(menu) >= 10, menu
    page.screenshot(path=str(tmp_path / "redoc.png"), full_page=False)
    assert refused == []


def test_the_wheel_ships_the_docs_and_console_assets(tmp_path: Path) -> None:
    """An installed (not editable) Conveyor must carry the files the pages load."""
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(root)],
        check=True, capture_output=True, timeout=300,
    )
    [wheel] = tmp_path.glob("conveyor-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    package = root / "src"
    wanted = {  # the docs pages' assets, and the console's assets and templates
        path.relative_to(package).as_posix()
        for folder in ("api/static", "console/static", "console/templates")
        for path in (package / "conveyor" / folder).rglob("*") if path.is_file()
    }
    assert {"conveyor/api/static/swagger-ui/swagger-ui-bundle.js",
            "conveyor/api/static/redoc/redoc.standalone.js",
            "conveyor/console/static/vendor/htmx/htmx.min.js",
            "conveyor/console/templates/base.html"} <= wanted
    assert wanted <= shipped, sorted(wanted - shipped)

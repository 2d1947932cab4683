"""``Conveyor()``, ``Client()`` and ``AsyncClient()`` find the server and the key through
``CONVEYOR_URL`` and ``CONVEYOR_API_KEY``, as the CLI does, against a real standalone that
requires keys."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conveyor import Conveyor
from conveyor.client import ApiError, AsyncClient, Client
from tests.e2e.test_standalone import clean_env
from tests.support.processes import conveyor_command, free_port

pytestmark = pytest.mark.slow
CONVEYOR = conveyor_command()


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A standalone that requires API keys, and an admin key for it."""
    db = str(tmp_path / "conveyor.db")
    env = clean_env({"CONVEYOR_AUTH_REQUIRED": "true"})
    subprocess.run([CONVEYOR, "migrate", "--db", db], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [CONVEYOR, "apikey", "create", "--scope", "admin", "--db", db],
        env=env, check=True, capture_output=True, text=True,
    )
    url = f"http://127.0.0.1:{free_port()}"
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [CONVEYOR, "standalone", "--db", db, "--port", url.rsplit(":", 1)[1]],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not _healthy(url):
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield url, made.stdout.strip()
    finally:
        proc.kill()
        proc.wait(10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_conveyor_and_client_read_url_and_key_from_the_environment(
    keyed_server: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, key = keyed_server
    monkeypatch.setenv("CONVEYOR_URL", url)
    with Client() as client, pytest.raises(ApiError) as refused:
        client.get("01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert refused.value.status == 401  # the right server, and no key yet

    monkeypatch.setenv("CONVEYOR_API_KEY", key)
    with Client() as client:
        assert client.submit("echo", {"x": 1}).result(timeout=10) == {"x": 1}

    app = Conveyor()
    assert (app.url, app.api_key) == (url, key)

    @app.task("echo")  # the built-in echo runs it on the server
    async def echo(x: int) -> dict[str, int]:
        return {"x": x}

    try:
        assert echo.submit(2).result(timeout=10) == {"x": 2}
    finally:
        app.close()


async def test_the_async_client_reads_them_too(
    keyed_server: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, key = keyed_server
    monkeypatch.setenv("CONVEYOR_URL", url)
    monkeypatch.setenv("CONVEYOR_API_KEY", key)
    async with AsyncClient() as client:
        handle = await client.submit("echo", {"y": 3})
        assert await handle == {"y": 3}


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_URL", "http://elsewhere:1")
    monkeypatch.setenv("CONVEYOR_API_KEY", "cvk_env")
    app = Conveyor(url="http://127.0.0.1:9", api_key="cvk_given")
    assert (app.url, app.api_key) == ("http://127.0.0.1:9", "cvk_given")
    monkeypatch.delenv("CONVEYOR_URL")
    monkeypatch.delenv("CONVEYOR_API_KEY")
    assert (Conveyor().url, Conveyor().api_key) == ("http://127.0.0.1:8080", None)

"""Schemathesis against the served OpenAPI spec of a real standalone server, with and without
credentials: no 5xx, no response that breaks its own schema, bad input refused with a 4xx."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.processes import conveyor_command, free_port

EXAMPLES = int(os.environ.get("CONVEYOR_FUZZ_EXAMPLES", "60"))
CONVEYOR = conveyor_command()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A standalone server that requires API keys, and an admin key for it."""
    home = tmp_path_factory.mktemp("fuzz")
    db = str(home / "fuzz.db")
    env = {**os.environ, "CONVEYOR_AUTH_REQUIRED": "true", "CONVEYOR_LOG_LEVEL": "ERROR"}
    subprocess.run([CONVEYOR, "migrate", "--db", db], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [CONVEYOR, "apikey", "create", "--scope", "admin", "--db", db],
        env=env, check=True, capture_output=True, text=True,
    )
    token = made.stdout.strip()
    port = free_port()
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [CONVEYOR, "standalone", "--db", db, "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("the server did not start: " + (home / "server.log").read_text()[-2000:])
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def fuzz(url: str, headers: dict[str, str]) -> None:
    """Every operation of the served spec, ``EXAMPLES`` generated cases each."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            # A schema-valid body can still name a task type nobody registered: the API
            # answers 422 by design, so "positive data must be accepted" does not apply.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.timeout(400)
def test_with_admin_key(server: tuple[str, str]) -> None:
    fuzz(server[0], {"Authorization": f"Bearer {server[1]}"})


@pytest.mark.timeout(400)
def test_without_credentials(server: tuple[str, str]) -> None:
    fuzz(server[0], {})

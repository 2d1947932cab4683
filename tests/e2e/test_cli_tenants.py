"""``conveyor apikey`` and tenants, as subprocesses: ``--tenant`` and ``--scope superadmin``
make keys only the CLI can make, ``apikey list`` shows each key's tenant, and a standalone with
keys required keeps one tenant's tasks from another while the superadmin sees both."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_cli_ux import Locked
from tests.e2e.test_standalone import run_cli

pytestmark = pytest.mark.slow


def _create(db: Path, *args: str) -> dict[str, str]:
    ran = run_cli("apikey", "create", "--db", str(db), "--json", *args)
    assert ran.returncode == 0, ran.stderr
    made: dict[str, str] = json.loads(ran.stdout)
    return made


def test_apikey_create_with_a_tenant_and_superadmin(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    assert run_cli("migrate", "--db", str(db)).returncode == 0
    acme = _create(db, "--scope", "submit", "--tenant", "acme", "--name", "billing")
    assert acme["tenant"] == "acme" and acme["scope"] == "submit"
    root = _create(db, "--scope", "superadmin")
    assert root["tenant"] == "default" and root["scope"] == "superadmin"
    bad = run_cli("apikey", "create", "--db", str(db), "--scope", "read", "--tenant", "Acme!")
    assert bad.returncode == 2 and "tenant 'Acme!' must match" in bad.stderr
    unknown = run_cli("apikey", "create", "--db", str(db), "--scope", "root")
    assert unknown.returncode == 2 and "superadmin" in unknown.stderr
    table = run_cli("apikey", "list", "--db", str(db))
    assert table.returncode == 0 and "tenant" in table.stdout
    lines = table.stdout.splitlines()
    assert any(acme["key_id"] in line and "acme" in line for line in lines), table.stdout
    only = json.loads(run_cli("apikey", "list", "--db", str(db), "--tenant", "acme",
                              "--json").stdout)
    assert [k["key_id"] for k in only] == [acme["key_id"]]

    locked = Locked(tmp_path, db, env={"CONVEYOR_AUTH_REQUIRED": "true"})
    try:
        locked.start()
        other = _create(db, "--scope", "admin")  # the default tenant's admin
        with httpx.Client(base_url=locked.url, timeout=10) as http:
            made = http.post("/api/v1/tasks", json={"task_type": "echo"},
                             headers={"Authorization": f"Bearer {acme['key']}"})
            assert made.status_code == 201 and made.json()["tenant"] == "acme"
            task_id = made.json()["task_id"]
            hidden = http.get(f"/api/v1/tasks/{task_id}",
                              headers={"Authorization": f"Bearer {other['key']}"})
            assert hidden.status_code == 404
            seen = http.get(f"/api/v1/tasks/{task_id}",
                            headers={"Authorization": f"Bearer {root['key']}"})
            assert seen.status_code == 200 and seen.json()["tenant"] == "acme"
            refused = http.post("/api/v1/keys", json={"scope": "superadmin"},
                                headers={"Authorization": f"Bearer {root['key']}"})
            assert refused.status_code == 422 and "conveyor apikey create" in refused.text
    finally:
        locked.kill()

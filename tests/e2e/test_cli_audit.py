"""``conveyor audit`` against a real standalone, and the rows ``conveyor apikey`` writes
straight into the database; the CLI run as a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_standalone import Standalone, run_cli, standalone

pytestmark = pytest.mark.slow


def test_conveyor_audit_shows_api_and_cli_actions(tmp_path: Path) -> None:
    with standalone(tmp_path, tmp_path / "conveyor.db") as server:
        check_audit(server)


def check_audit(server: Standalone) -> None:
    url = ("--url", server.url)
    db = ("--db", str(server.db))
    created = run_cli("apikey", "create", "--scope", "read", "--name", "dash", "--json", *db)
    assert created.returncode == 0, created.stderr
    key_id = json.loads(created.stdout)["key_id"]
    assert run_cli("apikey", "revoke", key_id, *db).returncode == 0
    assert run_cli("apikey", "revoke", "nosuchkey", *db).returncode == 1  # refused: no row
    assert run_cli("pause", "low", *url).returncode == 0
    task = json.loads(run_cli("submit", "echo", "--delay", "60", "--json", *url).stdout)
    assert run_cli("cancel", task["task_id"], *url).returncode == 0

    listed = run_cli("audit", "--json", *url)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["action"] for r in rows] == ["task.cancel", "queue.pause", "key.revoke",
                                           "key.create"]
    cancel, pause, revoke, create = rows
    assert (create["key_id"], create["client"], create["tenant"]) == (None, "cli", "default")
    assert create["target_id"] == key_id and create["after"] == {"scope": "read", "name": "dash"}
    assert revoke["target_id"] == key_id and revoke["client"] == "cli"
    assert pause["client"] == "127.0.0.1" and pause["after"] == {"paused": True}
    assert cancel["target_id"] == task["task_id"]

    only = json.loads(run_cli("audit", "--action", "key.create", "--json", *url).stdout)
    assert [r["target_id"] for r in only] == [key_id]
    assert len(json.loads(run_cli("audit", "--limit", "2", "--json", *url).stdout)) == 2
    by_target = json.loads(run_cli("audit", "--target", task["task_id"], "--json", *url).stdout)
    assert [r["action"] for r in by_target] == ["task.cancel"]

    table = run_cli("audit", *url)
    assert table.returncode == 0, table.stderr
    assert "status: PENDING → CANCELLED" in table.stdout
    assert "paused: false → true" in table.stdout
    assert "new: " in table.stdout and "cli" in table.stdout

    bad = run_cli("audit", "--since", "yesterday", *url)
    assert bad.returncode == 1 and "since" in bad.stderr
    wrong = run_cli("audit", "--action", "Cancel", *url)
    assert wrong.returncode == 1 and "kind.verb" in wrong.stderr

"""``conveyor tenants`` as a subprocess: set, list and rm write the database directly, bad
input exits 2 with a reason, and a create past a quota shows the CLI the 429 and its wait."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_standalone import run_cli, standalone

pytestmark = pytest.mark.slow


def test_set_list_rm_and_bad_input(tmp_path: Path) -> None:
    db = ("--db", str(tmp_path / "c.db"))
    assert run_cli("migrate", *db).returncode == 0
    first = run_cli("tenants", "set", "acme", "--weight", "3", "--max-pending", "10", *db)
    assert first.returncode == 0, first.stderr
    assert "weight 3, max_pending 10, creates_per_second unlimited" in first.stderr
    assert run_cli("tenants", "set", "acme", "--creates-per-second", "2.5", *db).returncode == 0
    listed = json.loads(run_cli("tenants", "list", "--json", *db).stdout)
    assert [(r["tenant"], r["weight"], r["max_pending"], r["creates_per_second"])
            for r in listed] == [("acme", 3, 10, 2.5)]
    assert "acme" in run_cli("tenants", "list", *db).stdout
    for bad, reason in ((("Bad!",), "must match"), (("x", "--weight", "0"), "--weight"),
                        (("x", "--creates-per-second", "0"), "above 0")):
        refused = run_cli("tenants", "set", *bad, *db)
        assert refused.returncode == 2 and reason in refused.stderr, refused.stderr
    assert run_cli("tenants", "rm", "acme", *db).returncode == 0
    again = run_cli("tenants", "rm", "acme", *db)
    assert again.returncode == 1 and "has no settings" in again.stderr
    assert json.loads(run_cli("tenants", "list", "--json", *db).stdout) == []


def test_changes_are_audited(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    with standalone(tmp_path, db) as server:
        assert run_cli("tenants", "set", "acme", "--weight", "2", "--db", str(db)).returncode == 0
        assert run_cli("tenants", "rm", "acme", "--db", str(db)).returncode == 0
        listed = run_cli("audit", "--target", "acme", "--json", "--url", server.url)
        rows = json.loads(listed.stdout)
        assert [(r["action"], r["client"]) for r in rows] == [
            ("tenant.reset", "cli"), ("tenant.set", "cli")]


def test_a_create_past_a_quota_shows_the_429(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    with standalone(tmp_path, db) as server:
        # Anonymous standalone callers are the default tenant.
        quota = run_cli("tenants", "set", "default", "--max-pending", "0",
                        "--db", str(db))
        assert quota.returncode == 0, quota.stderr
        submitted = run_cli("submit", "echo", "--url", server.url)
        assert submitted.returncode != 0
        assert "max_pending quota of 0; retry after 2 s" in submitted.stderr

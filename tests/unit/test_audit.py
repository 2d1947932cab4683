"""The audit log's pure parts: action names, cursors, query checks, what a row shows of a
config, and the CLI's one-line change."""

from __future__ import annotations

import pytest

from conveyor.apikeys import Principal, Scope
from conveyor.audit import (
    CLI,
    Action,
    Actor,
    AuditEntry,
    AuditQuery,
    check_action,
    config_view,
    parse_cursor,
)
from conveyor.cli.audit import change_text
from conveyor.errors import ValidationError
from conveyor.models import Backoff, Priority, TaskConfig


def test_actions_are_kind_dot_verb_and_the_kind_is_the_target_kind() -> None:
    for action in Action:
        assert check_action(action) == action
    assert AuditEntry(CLI, Action.KEY_REVOKE, "k1").target_kind == "key"
    assert AuditEntry(CLI, "schedule.pause", "nightly").target_kind == "schedule"  # later kinds
    for bad in ("cancel", "Task.cancel", "task.", ".cancel", "task.cancel.x", "task cancel", ""):
        with pytest.raises(ValidationError, match=r"kind\.verb"):
            check_action(bad)
    with pytest.raises(ValidationError):
        AuditEntry(CLI, "nope", "x")


def test_actor_of_a_principal_keeps_key_and_tenant() -> None:
    principal = Principal("k1", Scope.ADMIN, "acme")
    assert Actor.of(principal, "10.0.0.1") == Actor("k1", "acme", "10.0.0.1")
    assert (CLI.key_id, CLI.client) == (None, "cli")


def test_cursors_are_row_ids_only() -> None:
    assert parse_cursor(None) is None
    assert parse_cursor("42") == 42
    for bad in ("", "-1", "1.5", "abc", "٤٢", "9" * 20):
        with pytest.raises(ValidationError, match="cursor"):
            parse_cursor(bad)


def test_queries_refuse_what_they_cannot_use() -> None:
    assert AuditQuery(since=1.0, until=1.0).limit == 50
    with pytest.raises(ValidationError, match="since"):
        AuditQuery(since=2.0, until=1.0)
    with pytest.raises(ValidationError, match="action"):
        AuditQuery(action="Cancel")
    for limit in (0, 1001):
        with pytest.raises(ValidationError, match="limit"):
            AuditQuery(limit=limit)


def test_a_config_shows_what_it_sets_not_its_name_or_time() -> None:
    config = TaskConfig("mail", "http", {"url": "http://m/"}, timeout=3.0,
                        priority=Priority.HIGH, backoff=Backoff(1, 2, 30, 0.1), updated_at=9.0)
    view = config_view(config)
    assert view is not None
    assert view["priority"] == "high" and view["backoff"]["cap"] == 30
    assert "task_type" not in view and "updated_at" not in view
    assert config_view(None) is None


def test_change_text_names_what_changed() -> None:
    assert change_text({"status": "PENDING", "attempt": 0},
                       {"status": "CANCELLED", "attempt": 0}) == "status: PENDING → CANCELLED"
    assert change_text({"paused": False}, {"paused": True}) == "paused: false → true"
    assert change_text({"a": 1}, {"a": 1}) == "unchanged"
    assert change_text(None, {"scope": "read"}) == 'new: {"scope":"read"}'
    assert change_text({"timeout": 3}, None) == 'removed: {"timeout":3}'
    assert change_text(None, None) == ""

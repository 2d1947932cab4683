"""The seeds' own configuration loads: durations with units, a stable worker id or name, the
leader lock key; a bad duration names the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.config import load_settings, parse_duration
from conveyor.errors import ConfigError
from tests.unit.test_config import clean_env  # noqa: F401  (autouse: no stray CONVEYOR_*)


@pytest.mark.parametrize(("text", "seconds"), [
    ("10s", 10.0), ("100ms", 0.1), ("1m", 60.0), ("2h", 7200.0), ("1d", 86_400.0),
    ("10", 10.0), ("0.5", 0.5), ("1.5s", 1.5), (" 3 s ", 3.0), (7, 7), (0.25, 0.25),
])
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10x", "s", "", "-1s", "1 m s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_seed_yaml_loads(tmp_path: Path) -> None:
    (tmp_path / "conveyor.yaml").write_text(
        "scheduler:\n"
        "  leader_lock_ttl: 10s\n"
        "  leader_renew_interval: 3s\n"
        "  scan_interval: 100ms\n"
        "  leader_lock_key: conveyor:scheduler:leader\n"
        "worker:\n"
        "  id: worker-1\n"
        "  name: billing-worker\n"
        "  heartbeat_interval: 10s\n"
        "  heartbeat_ttl: 30s\n"
        "  graceful_shutdown_timeout: 1m\n"
        "tasks:\n"
        "  timeout: 5m\n"
    )
    s = load_settings()
    assert s.scheduler.leader_lock_ttl == 10.0
    assert s.scheduler.scan_interval == pytest.approx(0.1)
    assert s.scheduler.leader_lock_key == "conveyor:scheduler:leader"
    assert (s.worker.id, s.worker.name) == ("worker-1", "billing-worker")
    assert s.worker.graceful_shutdown_timeout == 60.0
    assert s.tasks.timeout == 300.0


def test_duration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_WORKER__HEARTBEAT_INTERVAL", "2s")
    monkeypatch.setenv("CONVEYOR_WORKER__HEARTBEAT_TTL", "1m")
    s = load_settings()
    assert (s.worker.heartbeat_interval, s.worker.heartbeat_ttl) == (2.0, 60.0)


def test_bad_duration_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_SCHEDULER__SCAN_INTERVAL", "soon")
    with pytest.raises(ConfigError, match=r"'scheduler.scan_interval'.*not a duration"):
        load_settings()


def test_bounds_still_apply_to_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_TASKS__TIMEOUT", "30d")
    with pytest.raises(ConfigError, match=r"'tasks\.timeout'"):
        load_settings()


def test_worker_id_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_WORKER__ID", "has space")
    with pytest.raises(ConfigError, match=r"'worker\.id'"):
        load_settings()


def test_log_level_is_checked_and_case_blind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_LOG_LEVEL", "warning")
    assert load_settings().log_level == "WARNING"
    monkeypatch.setenv("CONVEYOR_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="'log_level'"):
        load_settings()

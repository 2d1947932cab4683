"""Settings layers: defaults < conveyor.yaml < environment < flags; bad values name the setting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conveyor.config import Settings, load_settings
from conveyor.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No stray CONVEYOR_* variable or ./conveyor.yaml from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("CONVEYOR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults() -> None:
    s = load_settings()
    assert s == Settings()
    assert s.database_url == "conveyor.db"
    assert s.redis_url is None
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.scheduler.leader_lock_ttl == 5.0
    assert s.scheduler.leader_renew_interval == 1.0
    assert s.scheduler.batch_size == 500
    assert s.scheduler.load_balance_strategy == "least_task"
    assert s.worker.capacity == 10
    assert s.worker.supported_types == ()
    assert s.worker.heartbeat_ttl > s.worker.heartbeat_interval
    assert s.tasks.max_retries == 3
    assert s.tasks.backoff.base == 1.0


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        s.port = 1  # type: ignore[misc]


SEED_YAML = """
database_url: /data/conveyor.db
scheduler:
  leader_lock_ttl: 20
  leader_renew_interval: 5
  scan_interval: 0.5
  batch_size: 100
  timeout_check_interval: 2
  load_balance_strategy: round_robin
worker:
  capacity: 4
  supported_types: [echo, sleep]
  heartbeat_interval: 2
  queue_poll_interval: 0.1
  graceful_shutdown_timeout: 7
"""


def test_yaml_file_with_the_seeds_keys(tmp_path: Path) -> None:
    s = load_settings(write_yaml(tmp_path / "c.yaml", SEED_YAML))
    assert s.database_url == "/data/conveyor.db"
    assert s.scheduler.leader_lock_ttl == 20
    assert s.scheduler.leader_renew_interval == 5
    assert s.scheduler.scan_interval == 0.5
    assert s.scheduler.batch_size == 100
    assert s.scheduler.timeout_check_interval == 2
    assert s.scheduler.load_balance_strategy == "round_robin"
    assert s.worker.capacity == 4
    assert s.worker.supported_types == ("echo", "sleep")
    assert s.worker.heartbeat_interval == 2
    assert s.worker.queue_poll_interval == 0.1
    assert s.worker.graceful_shutdown_timeout == 7
    assert s.worker.heartbeat_ttl == 10.0  # untouched keys keep their defaults


def test_conveyor_yaml_in_the_working_directory_is_read(clean_env: Path) -> None:
    write_yaml(clean_env / "conveyor.yaml", "worker:\n  capacity: 3\n")
    assert load_settings().worker.capacity == 3


def test_conveyor_config_env_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write_yaml(tmp_path / "elsewhere.yaml", "port: 9000\n")
    monkeypatch.setenv("CONVEYOR_CONFIG", str(path))
    assert load_settings().port == 9000


def test_environment_overrides_yaml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", SEED_YAML)
    monkeypatch.setenv("CONVEYOR_SCHEDULER__BATCH_SIZE", "250")
    monkeypatch.setenv("CONVEYOR_WORKER__CAPACITY", "8")
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", "postgresql://u@db/conveyor")
    monkeypatch.setenv("CONVEYOR_REDIS_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("CONVEYOR_TASKS__BACKOFF_BASE", "0.2")
    s = load_settings(path)
    assert s.scheduler.batch_size == 250
    assert s.worker.capacity == 8
    assert s.database_url == "postgresql://u@db/conveyor"
    assert s.redis_url == "redis://127.0.0.1:6379/3"
    assert s.tasks.backoff_base == 0.2
    assert s.scheduler.scan_interval == 0.5  # still from the file
    assert s.worker.supported_types == ("echo", "sleep")


def test_environment_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_WORKER__SUPPORTED_TYPES", "echo, sleep,fail")
    assert load_settings().worker.supported_types == ("echo", "sleep", "fail")
    monkeypatch.setenv("CONVEYOR_WORKER__SUPPORTED_TYPES", '["a", "b"]')
    assert load_settings().worker.supported_types == ("a", "b")
    monkeypatch.setenv("CONVEYOR_WORKER__SUPPORTED_TYPES", "echo")
    assert load_settings().worker.supported_types == ("echo",)
    monkeypatch.setenv("CONVEYOR_HTTP_ALLOWED_HOSTS", "example.com, 10.0.0.0/8")
    assert load_settings().http_executor.allowed_hosts == ("example.com", "10.0.0.0/8")


def test_client_and_test_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's CONVEYOR_URL / CONVEYOR_API_KEY and the suite's CONVEYOR_TEST_* must not stop
    a server from starting in the same shell."""
    monkeypatch.setenv("CONVEYOR_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("CONVEYOR_API_KEY", "k")
    monkeypatch.setenv("CONVEYOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    assert load_settings().port == 8080


def test_flags_override_environment_and_yaml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write_yaml(tmp_path / "c.yaml", SEED_YAML + "port: 9000\n")
    monkeypatch.setenv("CONVEYOR_PORT", "9100")
    monkeypatch.setenv("CONVEYOR_WORKER__CAPACITY", "8")
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", "from-env.db")
    s = load_settings(
        path, port=9200, worker={"capacity": 16}, database_url="from-flag.db", host=None
    )
    assert s.port == 9200
    assert s.worker.capacity == 16
    assert s.database_url == "from-flag.db"
    assert s.host == "127.0.0.1"  # a flag left as None does not override
    assert s.worker.heartbeat_interval == 2  # nested flags merge, they do not replace
    assert s.scheduler.batch_size == 100


@pytest.mark.parametrize(
    ("env", "value", "setting"),
    [
        ("CONVEYOR_SCHEDULER__BATCH_SIZE", "abc", "scheduler.batch_size"),
        ("CONVEYOR_SCHEDULER__BATCH_SIZE", "0", "scheduler.batch_size"),
        ("CONVEYOR_SCHEDULER__BATCH_SIZE", "1000000", "scheduler.batch_size"),
        ("CONVEYOR_WORKER__CAPACITY", "-1", "worker.capacity"),
        ("CONVEYOR_WORKER__HEARTBEAT_INTERVAL", "soon", "worker.heartbeat_interval"),
        ("CONVEYOR_PORT", "70000", "port"),
        ("CONVEYOR_TASKS__BACKOFF_JITTER", "2", "tasks.backoff_jitter"),
        ("CONVEYOR_SCHEDULER__PRIORITY_MODE", "fair", "scheduler.priority_mode"),
        ("CONVEYOR_LOG_FORMAT", "xml", "log_format"),
        ("CONVEYOR_NO_SUCH_SETTING", "1", "no_such_setting"),
        ("CONVEYOR_WORKER__CAPACTIY", "5", "worker.capactiy"),
    ],
)
def test_bad_environment_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, setting: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=rf"setting '{setting}'"):
        load_settings()


def test_bad_yaml_value_names_the_setting(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", "worker:\n  capacity: lots\n")
    with pytest.raises(ConfigError, match=r"setting 'worker\.capacity'"):
        load_settings(path)


def test_bad_flag_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"setting 'port'"):
        load_settings(port=-5)


def test_leader_renew_interval_must_be_inside_the_ttl() -> None:
    with pytest.raises(ConfigError, match=r"leader_renew_interval.*leader_lock_ttl"):
        load_settings(scheduler={"leader_lock_ttl": 5, "leader_renew_interval": 5})
    with pytest.raises(ConfigError, match=r"leader_renew_interval.*leader_lock_ttl"):
        load_settings(scheduler={"leader_lock_ttl": 5, "leader_renew_interval": 8})
    # Only the TTL set, below the default renew interval (1 s): refused as well.
    with pytest.raises(ConfigError, match=r"leader_renew_interval.*leader_lock_ttl"):
        load_settings(scheduler={"leader_lock_ttl": 0.5})
    ok = load_settings(scheduler={"leader_lock_ttl": 5, "leader_renew_interval": 4.9})
    assert ok.scheduler.leader_renew_interval == 4.9


def test_heartbeat_ttl_must_exceed_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"heartbeat_ttl.*heartbeat_interval"):
        load_settings(worker={"heartbeat_interval": 3, "heartbeat_ttl": 3})
    monkeypatch.setenv("CONVEYOR_WORKER__HEARTBEAT_INTERVAL", "40")  # default TTL is 10
    with pytest.raises(ConfigError, match=r"heartbeat_ttl.*heartbeat_interval"):
        load_settings()


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_unreadable_yaml_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(write_yaml(tmp_path / "c.yaml", "worker: [unclosed\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(write_yaml(tmp_path / "d.yaml", "- just\n- a list\n"))


def test_unknown_balancer_fails_at_build() -> None:
    from conveyor.bootstrap import balancer

    with pytest.raises(ConfigError, match="load_balance_strategy"):
        balancer(load_settings(scheduler={"load_balance_strategy": "busiest"}))

"""Settings: built-in defaults < ``conveyor.yaml`` < environment (``CONVEYOR_*``) < flags.

One frozen object, read once at start (``load_settings``) and passed down; nothing reads the
environment later. Nested keys follow the seeds' yaml (``scheduler:``, ``worker:``); in the
environment they are spelled with a double underscore, e.g. ``CONVEYOR_SCHEDULER__BATCH_SIZE``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from conveyor.errors import ConfigError
from conveyor.models import Backoff

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _comma_list(cls: type, value: Any) -> Any:
    """A list setting given as one string (``echo,sleep`` in the environment or yaml)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """``10s``, ``100ms``, ``1m``, ``2h``, ``1d`` or plain seconds (``10``, ``0.5``) → seconds.

    The seeds' yaml writes durations with units; anything else is left for the field's own
    validation to reject, naming the setting.
    """
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            raise ValueError(f"{value!r} is not a duration (e.g. 10, 10s, 100ms, 1m, 2h)")
        return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration)]


class SchedulerSettings(BaseModel):
    model_config = _FROZEN

    leader_lock_ttl: Seconds = Field(10.0, gt=0, le=3600)
    leader_renew_interval: Seconds = Field(3.0, gt=0, le=3600)
    scan_interval: Seconds = Field(1.0, gt=0, le=3600)
    batch_size: int = Field(500, ge=1, le=10_000)
    timeout_check_interval: Seconds = Field(5.0, gt=0, le=3600)
    orphan_sweep_interval: Seconds = Field(30.0, gt=0, le=86_400)
    orphan_min_age: Seconds = Field(10.0, ge=0, le=86_400)
    load_balance_strategy: str = "least_task"
    priority_mode: Literal["strict", "weighted"] = "strict"
    priority_weights: tuple[int, int, int] = (1, 3, 6)  # low, normal, high
    timeout_grace: Seconds = Field(5.0, ge=0, le=3600)
    # The Redis key of the leader lease, under redis_prefix. Only schedulers that share it
    # compete for leadership; a different key per deployment keeps two apart on one Redis.
    leader_lock_key: str = Field("scheduler:leader", min_length=1, max_length=200)

    _split_weights = field_validator("priority_weights", mode="before")(_comma_list)

    @model_validator(mode="after")
    def _renew_inside_ttl(self) -> SchedulerSettings:
        # After the model, so a default on either side is checked too (e.g. only the TTL set).
        if self.leader_renew_interval >= self.leader_lock_ttl:
            raise ValueError(
                f"leader_renew_interval ({self.leader_renew_interval}) must be shorter than "
                f"leader_lock_ttl ({self.leader_lock_ttl})"
            )
        return self


class WorkerSettings(BaseModel):
    model_config = _FROZEN

    # A stable identity instead of host-pid-random: a restarted worker is the same worker in
    # `conveyor workers` and in its tasks' logs. ``id`` wins over ``name``; both unset: random.
    # Unique among live workers: a second one with the id of a live one is refused at start.
    id: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@-]+$")
    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:@-]+$")
    capacity: int = Field(10, ge=1, le=100_000)
    prefetch: int | None = Field(None, ge=0, le=100_000)  # None: as many as capacity
    supported_types: tuple[str, ...] = ()
    heartbeat_interval: Seconds = Field(10.0, gt=0, le=3600)
    heartbeat_ttl: Seconds = Field(30.0, gt=0, le=86_400)
    queue_poll_interval: Seconds = Field(1.0, gt=0, le=3600)
    graceful_shutdown_timeout: Seconds = Field(30.0, ge=0, le=86_400)
    thread_pool_size: int = Field(32, ge=1, le=1024)
    weight: float = Field(1.0, gt=0, le=1_000_000)

    _split_types = field_validator("supported_types", mode="before")(_comma_list)

    @model_validator(mode="after")
    def _ttl_above_interval(self) -> WorkerSettings:
        if self.heartbeat_ttl <= self.heartbeat_interval:
            raise ValueError(
                f"heartbeat_ttl ({self.heartbeat_ttl}) must be longer than heartbeat_interval "
                f"({self.heartbeat_interval})"
            )
        return self


class TaskDefaults(BaseModel):
    model_config = _FROZEN

    timeout: Seconds = Field(300.0, gt=0, le=7 * 86_400)
    max_retries: int = Field(3, ge=0, le=100)
    backoff_base: Seconds = Field(1.0, ge=0, le=86_400)
    backoff_factor: float = Field(2.0, ge=1, le=100)
    backoff_cap: Seconds = Field(300.0, ge=0, le=7 * 86_400)
    backoff_jitter: float = Field(0.2, ge=0, le=1)

    @property
    def backoff(self) -> Backoff:
        return Backoff(
            self.backoff_base, self.backoff_factor, self.backoff_cap, self.backoff_jitter
        )


class HttpExecutorSettings(BaseModel):
    model_config = _FROZEN

    allowed_hosts: tuple[str, ...] = ()
    max_connections: int = Field(100, ge=1, le=10_000)

    _split_hosts = field_validator("allowed_hosts", mode="before")(_comma_list)


class Settings(BaseModel):
    """Everything a Conveyor process needs to know, validated at start."""

    model_config = _FROZEN

    database_url: str = "conveyor.db"
    redis_url: str | None = None
    redis_prefix: str = Field("conveyor:", min_length=1, max_length=64)
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    # Several `conveyor api` processes may share one port (SO_REUSEPORT; the kernel spreads
    # connections), so the API can use every core. Off by default: a second process on a taken
    # port should fail, not silently share it.
    reuse_port: bool = False
    app: str | None = None
    max_payload_bytes: int = Field(1_048_576, ge=64, le=64 * 1_048_576)
    max_body_bytes: int = Field(16 * 1_048_576, ge=1024, le=512 * 1_048_576)
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    ] = "INFO"
    log_format: Literal["console", "json"] = "console"
    webhook_secret: str | None = None
    auth_required: bool | None = None
    tasks: TaskDefaults = TaskDefaults()
    scheduler: SchedulerSettings = SchedulerSettings()
    worker: WorkerSettings = WorkerSettings()
    http_executor: HttpExecutorSettings = HttpExecutorSettings()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings")
    return data


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_layer() -> dict[str, Any]:
    """Environment variables that do not follow the nested naming but are documented."""
    hosts = os.environ.get("CONVEYOR_HTTP_ALLOWED_HOSTS")
    if hosts is None:
        return {}
    return {"http_executor": {"allowed_hosts": [h.strip() for h in hosts.split(",") if h.strip()]}}


def layers(config_file: str | Path | None = None, **flags: Any) -> list[tuple[str, dict[str, Any]]]:
    """Each layer with its name, lowest first: what ``config show`` reports as a source."""
    path = Path(config_file or os.environ.get("CONVEYOR_CONFIG", "conveyor.yaml"))
    if config_file and not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    return [
        (f"file {path}", _read_yaml(path) if path.exists() else {}),
        ("environment", _merge(_environment_values(), _env_layer())),
        ("flag", {k: v for k, v in flags.items() if v is not None}),
    ]


def load_settings(config_file: str | Path | None = None, **flags: Any) -> Settings:
    """Build the settings from every layer; a bad value fails here, naming the setting."""
    merged: dict[str, Any] = {}
    for _, layer in layers(config_file, **flags):
        merged = _merge(merged, layer)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc


_SPECIAL_ENV = ("CONVEYOR_CONFIG", "CONVEYOR_HTTP_ALLOWED_HOSTS")
# Read by the CLI client and the test suite, not settings of a Conveyor process.
_NOT_SETTINGS = ("CONVEYOR_URL", "CONVEYOR_API_KEY")
_NOT_SETTINGS_PREFIX = "CONVEYOR_TEST_"


def _environment_values() -> dict[str, Any]:
    """Read ``CONVEYOR_*`` variables into a nested mapping (``A__B`` → ``{"a": {"b": ...}}``)."""
    values: dict[str, Any] = {}
    for name, raw in os.environ.items():
        if not name.startswith("CONVEYOR_") or name in _SPECIAL_ENV or name in _NOT_SETTINGS:
            continue
        if name.startswith(_NOT_SETTINGS_PREFIX):
            continue
        parts = name[len("CONVEYOR_"):].lower().split("__")
        node = values
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_env_value(raw)
    return values


def _parse_env_value(raw: str) -> Any:
    if raw.startswith(("[", "{")):
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError:
            return raw
    return raw  # list settings split commas themselves (``_comma_list``)


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        lines.append(f"setting {name!r}: {error['msg']}")
    return "invalid settings: " + "; ".join(lines)

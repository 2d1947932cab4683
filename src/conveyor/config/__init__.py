"""Settings: built-in defaults < ``conveyor.yaml`` < environment (``CONVEYOR_*``) < flags.

One frozen object, read once at start (``load_settings``) and passed down; nothing reads the
environment later. Nested keys follow the seeds' yaml (``scheduler:``, ``worker:``); in the
environment they are spelled with a double underscore, e.g. ``CONVEYOR_SCHEDULER__BATCH_SIZE``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
)

from conveyor.config.fields import FROZEN, Seconds, parse_duration
from conveyor.config.sections import (
    HttpExecutorSettings,
    MetricsSettings,
    RetentionSettings,
    SchedulerSettings,
    SecretsSettings,
    ServerSettings,
    TaskDefaults,
    WebhookSettings,
    WorkerSettings,
)
from conveyor.errors import ConfigError

__all__ = [
    "HttpExecutorSettings",
    "MetricsSettings",
    "RetentionSettings",
    "SchedulerSettings",
    "Seconds",
    "SecretsSettings",
    "ServerSettings",
    "Settings",
    "TaskDefaults",
    "WebhookSettings",
    "WorkerSettings",
    "layers",
    "load_settings",
    "parse_duration",
]


class Settings(BaseModel):
    """Everything a Conveyor process needs to know, validated at start."""

    model_config = FROZEN

    database_url: str = "conveyor.db"
    redis_url: str | None = None
    # The coordination backend of a distributed deployment, by URL: redis://... (as
    # redis_url) or etcd://host:port[,host:port...] / etcds://... (coordination/etcd). It wins
    # over redis_url when both are set. redis_prefix is the key prefix on either backend.
    coordination_url: str | None = None
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
    # A task's result, encoded: a larger one fails its task (FAILED, with the size in the
    # error) instead of reaching the store. It costs memory in the worker and in every API
    # answer that includes it; at most 4 MiB, so a result, escaped, fits one statement inside
    # MariaDB's default 16 MiB packet.
    max_result_bytes: int = Field(1_048_576, ge=64, le=4 * 1_048_576)
    # Payload and result text one task list answer may carry (``include=payload,result``):
    # the page stops early with a next_cursor once it is spent, so one list request holds at
    # most about this much (plus one oversized task, sent alone) in the API's memory.
    max_list_bytes: int = Field(8 * 1_048_576, ge=1024, le=256 * 1_048_576)
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    ] = "INFO"
    log_format: Literal["console", "json"] = "console"
    webhook_secret: str | None = None  # whsec_<base64>, see conveyor.webhooks.signing
    auth_required: bool | None = None
    tasks: TaskDefaults = TaskDefaults()
    scheduler: SchedulerSettings = SchedulerSettings()
    worker: WorkerSettings = WorkerSettings()
    http_executor: HttpExecutorSettings = HttpExecutorSettings()
    webhooks: WebhookSettings = WebhookSettings()
    metrics: MetricsSettings = MetricsSettings()
    retention: RetentionSettings = RetentionSettings()
    server: ServerSettings = ServerSettings()
    secrets: SecretsSettings = SecretsSettings()


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml  # only when a file or a structured variable is there: not every process

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
        import yaml

        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError:
            return raw
    return raw  # list settings split commas themselves (``comma_list``)


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "settings"
        lines.append(f"setting {name!r}: {error['msg']}")
    return "invalid settings: " + "; ".join(lines)

"""What every ``conveyor`` command shares: the Typer app, the consoles, the options, and how
errors and answers are printed."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from conveyor.client import ApiError, Client, TaskInfo, WaitTimeout
from conveyor.config import Settings, load_settings
from conveyor.errors import ConveyorError

T = TypeVar("T")

cli = typer.Typer(
    name="conveyor", help="Conveyor: a distributed asynchronous task service.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Path of conveyor.yaml.")]
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="SQLite file path or database URL (mysql://, postgresql://)."),
]
RedisOpt = Annotated[str | None, typer.Option("--redis-url", help="Redis URL (distributed mode).")]
HostOpt = Annotated[str | None, typer.Option("--host", help="Address the API listens on.")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Port the API listens on.")]
AppOpt = Annotated[
    str | None, typer.Option("--app", help="module:attribute of a conveyor.Conveyor with tasks.")
]
AppDirOpt = Annotated[
    str, typer.Option("--app-dir", help="Directory --app is imported from (put first on sys.path).")
]
MetricsPortOpt = Annotated[
    int | None,
    typer.Option("--metrics-port", help="Serve /metrics, /healthz and /readyz on this port."),
]
CapacityOpt = Annotated[int | None, typer.Option("--capacity", help="Tasks a worker runs at once.")]
UrlOpt = Annotated[
    str, typer.Option("--url", envvar="CONVEYOR_URL", help="Where the Conveyor API answers.")
]
KeyOpt = Annotated[
    str | None, typer.Option("--api-key", envvar="CONVEYOR_API_KEY", help="API key to send.")
]


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(code)


def settings_from(config: str | None, capacity: int | None = None, **flags: Any) -> Settings:
    if capacity is not None:
        flags["worker"] = {"capacity": capacity}
    try:
        return load_settings(config, **flags)
    except ConveyorError as exc:
        fail(str(exc), 2)


def when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def client_for(url: str, api_key: str | None) -> Client:
    return Client(url, api_key=api_key)


def show(data: Any) -> None:
    if isinstance(data, TaskInfo):
        data = {k: getattr(data, k) for k in data.__dataclass_fields__}
    out.print_json(json.dumps(data, default=str))


def call(action: Any) -> Any:
    try:
        return action()
    except ApiError as exc:
        fail(exc.message if exc.status else str(exc))
    except WaitTimeout as exc:
        fail(str(exc))

"""What every ``conveyor`` command shares: the Typer app and its help panels, the consoles,
the options (each naming its environment variable and default), and how answers and errors
are printed.

Every command module is imported to build the command tree, so none may import at its top
what only some commands use (the HTTP client, the SQL store): ``--help``, and every process
the CLI starts, would pay for all of it.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from conveyor import __version__
from conveyor.cli.hints import explain
from conveyor.config import Settings, load_settings
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.client import Client

T = TypeVar("T")

RUN, TASKS, OPERATIONS = "Run", "Tasks", "Operations"

EXAMPLES = """\
[bold]Examples[/bold]

  conveyor standalone                          [dim]# all in one, on conveyor.db[/dim]
  conveyor submit echo -p '{"x": 1}' --wait    [dim]# run a task, print its result[/dim]
  conveyor list --status FAILED                [dim]# what went wrong[/dim]
  conveyor queues --json                       [dim]# for scripts[/dim]
"""

cli = typer.Typer(
    name="conveyor", help="Conveyor: a distributed asynchronous task service.",
    epilog=EXAMPLES, no_args_is_help=True, pretty_exceptions_enable=False,
    add_completion=False, rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _console(stderr: bool) -> Console:
    """On a terminal, its width; piped, never wrap or truncate (a script reads whole lines)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 100_000)


out = _console(False)
err = _console(True)


def _version(value: bool) -> None:
    if value:
        out.print(f"conveyor {__version__}", highlight=False)
        raise typer.Exit()


@cli.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit.",
    )] = False,
) -> None:
    """Conveyor: a distributed asynchronous task service."""


@functools.cache
def _defaults() -> Settings:
    return Settings()


def _setting_default(path: str) -> str:
    node: Any = _defaults()
    for part in path.split("."):
        node = getattr(node, part)
    return "none" if node is None else str(node)


def setting(flag: str, path: str, help: str) -> Any:
    """An option that overrides setting ``path``. The setting layer reads the environment and
    conveyor.yaml itself (so ``config show`` can say where a value came from); the help names
    the variable and the default."""
    env = "CONVEYOR_" + path.upper().replace(".", "__")
    return typer.Option(
        flag, help=f"{help} \\[env var: {env}] \\[default: {_setting_default(path)}]",
        show_default=False,
    )


ConfigOpt = Annotated[str | None, typer.Option(
    "--config", "-c", help="Path of conveyor.yaml. \\[env var: CONVEYOR_CONFIG] "
    "\\[default: ./conveyor.yaml if present]", show_default=False)]
DbOpt = Annotated[str | None, setting(
    "--db", "database_url", "SQLite file path or database URL (mysql://, postgresql://).")]
RedisOpt = Annotated[str | None, setting("--redis-url", "redis_url", "Redis URL (distributed).")]
CoordinationOpt = Annotated[str | None, setting(
    "--coordination-url", "coordination_url",
    "etcd://host:port[,host:port] (or a Redis URL); wins over --redis-url.")]
HostOpt = Annotated[str | None, setting("--host", "host", "Address the API listens on.")]
PortOpt = Annotated[int | None, setting("--port", "port", "Port the API listens on.")]
AppOpt = Annotated[str | None, setting(
    "--app", "app", "module:attribute of a conveyor.Conveyor with your tasks.")]
AppDirOpt = Annotated[str, typer.Option(
    "--app-dir", help="Directory --app is imported from (put first on sys.path).")]
MetricsPortOpt = Annotated[int | None, setting(
    "--metrics-port", "metrics_port", "Serve /metrics, /healthz and /readyz on this port.")]
LogLevelOpt = Annotated[str | None, setting(
    "--log-level", "log_level", "DEBUG, INFO, WARNING or ERROR (WARNING: no per-task lines).")]
LogFormatOpt = Annotated[str | None, setting(
    "--log-format", "log_format", "console (for people) or json (one object per line).")]
CapacityOpt = Annotated[int | None, setting(
    "--capacity", "worker.capacity", "Tasks a worker runs at once.")]
UrlOpt = Annotated[str, typer.Option(
    "--url", envvar="CONVEYOR_URL", show_envvar=True, help="Where the Conveyor API answers.")]
KeyOpt = Annotated[str | None, typer.Option(
    "--api-key", envvar="CONVEYOR_API_KEY", show_envvar=True, help="API key to send.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
URL = "http://127.0.0.1:8080"


def fail(message: str, code: int = 1) -> NoReturn:
    # Escaped: server and driver messages hold brackets ("[SQL: ...]") that are not markup.
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_from(config: str | None, capacity: int | None = None, **flags: Any) -> Settings:
    if capacity is not None:
        flags["worker"] = {"capacity": capacity}
    try:
        return load_settings(config, **flags)
    except ConveyorError as exc:
        fail(str(exc), 2)


def client_for(url: str, api_key: str | None) -> Client:
    if "://" not in url:
        fail(f"--url {url!r} has no scheme; did you mean http://{url} ?", 2)
    from conveyor.client import Client

    return Client(url, api_key=api_key)


def as_data(data: Any) -> Any:
    # A TaskInfo exists only once the client is imported; a command without one imports none.
    wire = sys.modules.get("conveyor.client.wire")
    if wire is not None and isinstance(data, wire.TaskInfo):
        return {k: getattr(data, k) for k in data.__dataclass_fields__}
    return data


def show(data: Any, as_json: bool = False) -> None:
    """JSON: pretty for people, one compact line with ``--json`` (for jq and scripts)."""
    text = json.dumps(as_data(data), default=str)
    if as_json:
        out.print(text, highlight=False, markup=False, soft_wrap=True)
    else:
        out.print_json(text)


def call(action: Any, url: str = "") -> Any:
    from conveyor.client import ApiError, WaitTimeout

    try:
        return action()
    except ApiError as exc:
        fail(explain(exc, url))
    except WaitTimeout as exc:
        fail(str(exc))

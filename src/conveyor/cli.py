"""The ``conveyor`` command: run the service (standalone, api, scheduler, worker, migrate) and
talk to a running one (submit, get, list, cancel, retry, logs)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from conveyor.client import ApiError, Client, TaskInfo, WaitTimeout
from conveyor.config import Settings, load_settings
from conveyor.errors import ConveyorError
from conveyor.store.sql import SqlStore

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


def _run(
    settings: Settings, *, api: bool, scheduler: bool, worker: bool, standalone: bool = False
) -> None:
    from conveyor.observability.logs import configure
    from conveyor.process import Process

    configure(settings.log_level, settings.log_format)
    try:
        process = Process(
            settings, api=api, scheduler=scheduler, worker=worker, standalone=standalone
        )
        code = asyncio.run(process.run())
    except ConveyorError as exc:
        fail(str(exc), 2)
    raise typer.Exit(code)


@cli.command()
def standalone(
    config: ConfigOpt = None, db: DbOpt = None, host: HostOpt = None, port: PortOpt = None,
    app: AppOpt = None, capacity: CapacityOpt = None, metrics_port: MetricsPortOpt = None,
) -> None:
    """API, scheduler and worker in one process on a SQLite file: nothing else to install."""
    settings = settings_from(config, capacity, database_url=db, host=host, port=port, app=app,
                             metrics_port=metrics_port)
    err.print(
        f"Conveyor standalone on http://{settings.host}:{settings.port} "
        f"(store: {settings.database_url}); API docs at /docs"
    )
    _run(settings, api=True, scheduler=True, worker=True, standalone=True)


@cli.command()
def api(
    config: ConfigOpt = None, db: DbOpt = None, redis_url: RedisOpt = None,
    host: HostOpt = None, port: PortOpt = None, app: AppOpt = None,
    reuse_port: Annotated[
        bool | None,
        typer.Option("--reuse-port", help="Share the port with other API processes."),
    ] = None,
) -> None:
    """Serve the REST API (distributed mode); with --reuse-port, start one per core."""
    _run(settings_from(config, database_url=db, redis_url=redis_url, host=host, port=port,
                       app=app, reuse_port=reuse_port), api=True, scheduler=False, worker=False)


scheduler_cli = typer.Typer(help="Run a scheduler, or (status) show the elected one.")
cli.add_typer(scheduler_cli, name="scheduler")


@scheduler_cli.callback(invoke_without_command=True)
def scheduler(
    ctx: typer.Context, config: ConfigOpt = None, db: DbOpt = None, redis_url: RedisOpt = None,
    metrics_port: MetricsPortOpt = None,
) -> None:
    """Run a scheduler; several may run, one is elected leader."""
    if ctx.invoked_subcommand is None:
        _run(settings_from(config, database_url=db, redis_url=redis_url,
                           metrics_port=metrics_port),
             api=False, scheduler=True, worker=False)


@scheduler_cli.command("status")
def scheduler_status(url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Leader id, fencing epoch, queue lengths, delayed count, paused queues."""
    with _client(url, api_key) as client:
        _print(_call(client.scheduler_status))


@cli.command()
def workers(url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Live workers with their load and capacity."""
    table = Table("worker_id", "host", "pid", "load", "capacity", "types", "last_heartbeat")
    with _client(url, api_key) as client:
        for w in _call(client.workers):
            table.add_row(w["worker_id"], w["host"], str(w["pid"]), str(w["load"]),
                          str(w["capacity"]), ",".join(w["types"]) or "*",
                          w["last_heartbeat"] or "")
    out.print(table)


@cli.command()
def queues(url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Queue lengths per priority, the delayed count, and what is paused."""
    with _client(url, api_key) as client:
        _print(_call(client.queues))


@cli.command()
def stats(
    window: Annotated[float, typer.Option(help="Seconds the rates cover.")] = 300,
    url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None,
) -> None:
    """Tasks by state and by type, and creation / completion rates."""
    with _client(url, api_key) as client:
        _print(_call(lambda: client.stats(window)))


@cli.command()
def pause(
    name: Annotated[str, typer.Argument(help="high, normal, low, or a task type.")],
    url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None,
) -> None:
    """Stop dispatching a priority queue or a task type (queued tasks wait)."""
    with _client(url, api_key) as client:
        _print(_call(lambda: client.pause(name)))


@cli.command()
def resume(
    name: Annotated[str, typer.Argument(help="high, normal, low, or a task type.")],
    url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None,
) -> None:
    """Resume dispatching a paused priority queue or task type."""
    with _client(url, api_key) as client:
        _print(_call(lambda: client.resume(name)))


@cli.command()
def worker(
    config: ConfigOpt = None, db: DbOpt = None, redis_url: RedisOpt = None, app: AppOpt = None,
    capacity: CapacityOpt = None, metrics_port: MetricsPortOpt = None,
) -> None:
    """Run a worker that takes tasks from its queue and executes them."""
    _run(settings_from(config, capacity, database_url=db, redis_url=redis_url, app=app,
                       metrics_port=metrics_port),
         api=False, scheduler=False, worker=True)


@cli.command()
def migrate(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Create or upgrade the database tables."""
    settings = settings_from(config, database_url=db)

    async def go() -> None:
        store = SqlStore(settings.database_url)
        try:
            await store.migrate()
        finally:
            await store.close()

    try:
        asyncio.run(go())
    except Exception as exc:
        fail(f"migration failed: {exc}")
    err.print(f"database {settings.database_url} is up to date")


apikey_cli = typer.Typer(help="Create, list and revoke API keys (talks to the database).")
cli.add_typer(apikey_cli, name="apikey")


def _with_store(settings: Settings, action: Callable[[SqlStore], Awaitable[T]]) -> T:
    async def go() -> T:
        store = SqlStore(settings.database_url)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except ConveyorError as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"database {settings.database_url}: {exc}")


@apikey_cli.command("create")
def apikey_create(
    scope: Annotated[str, typer.Option(help="read, submit or admin.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
    config: ConfigOpt = None, db: DbOpt = None,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    from conveyor.apikeys import Scope, new_key

    try:
        parsed = Scope.parse(scope)
    except ConveyorError as exc:
        fail(str(exc), 2)
    key, token = new_key(parsed, name, time.time())
    _with_store(settings_from(config, database_url=db), lambda store: store.keys.put_key(key))
    err.print(f"created key {key.key_id} with scope {parsed.label}; it is shown only once:")
    out.print(token, highlight=False)


@apikey_cli.command("revoke")
def apikey_revoke(key_id: str, config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Revoke a key (by its id, the part after cvk_); refused from the next call on."""
    settings = settings_from(config, database_url=db)
    if not _with_store(settings, lambda store: store.keys.revoke_key(key_id, time.time())):
        fail(f"no active key with id {key_id!r}")
    err.print(f"revoked key {key_id}")


@apikey_cli.command("list")
def apikey_list(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Key ids, scopes and names (never the secrets)."""
    keys = _with_store(settings_from(config, database_url=db), lambda store: store.keys.list_keys())
    table = Table("key_id", "scope", "name", "created", "revoked")
    for k in keys:
        table.add_row(k.key_id, k.scope.label, k.name, _when(k.created_at), _when(k.revoked_at))
    out.print(table)


def _when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _client(url: str, api_key: str | None) -> Client:
    return Client(url, api_key=api_key)


def _print(data: Any) -> None:
    if isinstance(data, TaskInfo):
        data = {k: getattr(data, k) for k in data.__dataclass_fields__}
    out.print_json(json.dumps(data, default=str))


def _call(action: Any) -> Any:
    try:
        return action()
    except ApiError as exc:
        fail(exc.message if exc.status else str(exc))
    except WaitTimeout as exc:
        fail(str(exc))


@cli.command()
def submit(
    task_type: Annotated[str, typer.Argument(help="Task type, e.g. echo.")],
    payload: Annotated[str, typer.Option("--payload", "-p", help="JSON object.")] = "{}",
    priority: Annotated[str | None, typer.Option(help="high, normal, low or 2, 1, 0.")] = None,
    delay: Annotated[float | None, typer.Option(help="Seconds before it may run.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds one attempt may take.")] = None,
    max_retries: Annotated[int | None, typer.Option(help="Retries after a failure.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Same key, same task.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the final state.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 60.0,
    url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None,
) -> None:
    """Create a task; prints it (and with --wait, its final state)."""
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        fail(f"--payload is not valid JSON: {exc}", 2)
    if not isinstance(body, dict):
        fail("--payload must be a JSON object", 2)
    with _client(url, api_key) as client:
        handle = _call(lambda: client.submit(
            task_type, body, priority=priority, delay_seconds=delay, timeout_seconds=timeout,
            max_retries=max_retries, idempotency_key=idempotency_key,
        ))
        info = _call(lambda: client.wait(handle.id, wait_timeout)) if wait else handle.info
    _print(info)
    if wait and info.status != "SUCCESS":
        raise typer.Exit(1)


@cli.command()
def get(task_id: str, url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Show one task."""
    with _client(url, api_key) as client:
        _print(_call(lambda: client.get(task_id)))


@cli.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="PENDING, PROCESSING, SUCCESS, ...")] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="Task type.")] = None,
    limit: Annotated[int, typer.Option(help="Most rows to show.", min=1)] = 50,
    url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None,
) -> None:
    """List tasks, newest first."""
    table = Table("task_id", "type", "status", "priority", "attempt", "created_at")
    table.columns[0].no_wrap = True
    with _client(url, api_key) as client:
        def rows() -> list[TaskInfo]:
            found = []
            for info in client.list(status and status.upper(), task_type, min(limit, 1000)):
                found.append(info)
                if len(found) >= limit:
                    break
            return found

        for t in _call(rows):
            table.add_row(t.task_id, t.task_type, t.status, t.priority, str(t.attempt),
                          t.created_at or "")
    out.print(table)


@cli.command()
def cancel(task_id: str, url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Cancel a pending task, or signal a running one to stop."""
    with _client(url, api_key) as client:
        _print(_call(lambda: client.cancel(task_id)))


@cli.command()
def retry(task_id: str, url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Run a FAILED, TIMEOUT or CANCELLED task again."""
    with _client(url, api_key) as client:
        _print(_call(lambda: client.retry(task_id)))


@cli.command()
def logs(task_id: str, url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Show the state moves of one task."""
    table = Table("at", "attempt", "from", "to", "worker", "message")
    with _client(url, api_key) as client:
        for row in _call(lambda: client.logs(task_id)):
            table.add_row(row["at"], str(row["attempt"]), row["from_status"] or "",
                          row["to_status"], row["worker_id"] or "", row["message"])
    out.print(table)


def main() -> None:
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)

"""Commands that run Conveyor: standalone, api, scheduler, worker, migrate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from conveyor.banner import mask
from conveyor.cli.common import (
    RUN,
    AppDirOpt,
    AppOpt,
    CapacityOpt,
    ConfigOpt,
    CoordinationOpt,
    DbOpt,
    HostOpt,
    JsonOpt,
    LogFormatOpt,
    LogLevelOpt,
    MetricsPortOpt,
    PortOpt,
    RedisOpt,
    cli,
    err,
    fail,
    settings_from,
    show,
)
from conveyor.cli.hints import database_error
from conveyor.config import Settings
from conveyor.dbhelp import database_hint
from conveyor.errors import ConveyorError


def _run(
    settings: Settings, *, api: bool, scheduler: bool, worker: bool, standalone: bool = False,
    app_dir: str = ".",
) -> None:
    import asyncio
    import gc

    # Off while the roles are imported and built (long-lived objects, no garbage worth
    # collecting); ``Process.run`` freezes what start made and turns it back on.
    gc.disable()
    from conveyor.observability.logs import configure
    from conveyor.process import Process

    # As uvicorn, Celery and RQ do: ``--app mytasks:app`` finds mytasks.py where it is run
    # (a console script's sys.path[0] is the virtualenv's bin/, not the working directory).
    sys.path.insert(0, str(Path(app_dir).resolve()))
    configure(settings.log_level, settings.log_format)
    try:
        process = Process(
            settings, api=api, scheduler=scheduler, worker=worker, standalone=standalone
        )
        code = asyncio.run(process.run())
    except ConveyorError as exc:
        fail(database_hint(settings.database_url, str(exc)) or str(exc), 2)
    raise typer.Exit(code)


@cli.command(rich_help_panel=RUN, epilog="Example: conveyor standalone --app mytasks:app")
def standalone(
    config: ConfigOpt = None, db: DbOpt = None, host: HostOpt = None, port: PortOpt = None,
    app: AppOpt = None, app_dir: AppDirOpt = ".", capacity: CapacityOpt = None,
    metrics_port: MetricsPortOpt = None, log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """API, scheduler and worker in one process on a SQLite file: nothing else to install."""
    settings = settings_from(config, capacity, database_url=db, host=host, port=port, app=app,
                             metrics_port=metrics_port, log_level=log_level,
                             log_format=log_format)
    _run(settings, api=True, scheduler=True, worker=True, standalone=True, app_dir=app_dir)


@cli.command(rich_help_panel=RUN,
             epilog="Example: conveyor api --db postgresql://db/conveyor --redis-url "
             "redis://cache:6379/0 (or --coordination-url etcd://etcd:2379)")
def api(
    config: ConfigOpt = None, db: DbOpt = None, redis_url: RedisOpt = None,
    coordination_url: CoordinationOpt = None,
    host: HostOpt = None, port: PortOpt = None, app: AppOpt = None, app_dir: AppDirOpt = ".",
    reuse_port: Annotated[
        bool | None,
        typer.Option("--reuse-port", help="Share the port with other API processes."),
    ] = None,
    log_level: LogLevelOpt = None, log_format: LogFormatOpt = None,
) -> None:
    """Serve the REST API (distributed mode); with --reuse-port, start one per core."""
    _run(settings_from(config, database_url=db, redis_url=redis_url,
                       coordination_url=coordination_url, host=host, port=port, app=app,
                       reuse_port=reuse_port, log_level=log_level, log_format=log_format),
         api=True, scheduler=False, worker=False,
         app_dir=app_dir)


scheduler_cli = typer.Typer(help="Run a scheduler, or (scheduler status) show the elected one.")
cli.add_typer(scheduler_cli, name="scheduler", rich_help_panel=RUN)


@scheduler_cli.callback(invoke_without_command=True)
def scheduler(
    ctx: typer.Context, config: ConfigOpt = None, db: DbOpt = None, redis_url: RedisOpt = None,
    coordination_url: CoordinationOpt = None,
    metrics_port: MetricsPortOpt = None, log_level: LogLevelOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Run a scheduler; several may run, one is elected leader."""
    if ctx.invoked_subcommand is None:
        _run(settings_from(config, database_url=db, redis_url=redis_url,
                           coordination_url=coordination_url, metrics_port=metrics_port,
                           log_level=log_level, log_format=log_format),
             api=False, scheduler=True, worker=False)


@cli.command(rich_help_panel=RUN, epilog="Example: conveyor worker --app mytasks:app --capacity 50")
def worker(
    config: ConfigOpt = None, db: DbOpt = None, redis_url: RedisOpt = None,
    coordination_url: CoordinationOpt = None, app: AppOpt = None,
    app_dir: AppDirOpt = ".", capacity: CapacityOpt = None, metrics_port: MetricsPortOpt = None,
    log_level: LogLevelOpt = None, log_format: LogFormatOpt = None,
) -> None:
    """Run a worker that takes tasks from its queue and executes them."""
    _run(settings_from(config, capacity, database_url=db, redis_url=redis_url,
                       coordination_url=coordination_url, app=app, metrics_port=metrics_port,
                       log_level=log_level, log_format=log_format),
         api=False, scheduler=False, worker=True, app_dir=app_dir)


@cli.command(rich_help_panel=RUN)
def migrate(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Create or upgrade the database tables."""
    settings = settings_from(config, database_url=db)

    import asyncio

    from conveyor.store.sql import SqlStore

    async def go() -> None:
        store = SqlStore(settings.database_url)
        try:
            await store.migrate()
        finally:
            await store.close()

    try:
        asyncio.run(go())
    except Exception as exc:
        fail(f"migration failed: {database_error(settings.database_url, exc)}")
    if as_json:
        show({"database_url": mask(settings.database_url), "up_to_date": True}, True)
        return
    err.print(f"database {mask(settings.database_url)} is up to date", highlight=False)

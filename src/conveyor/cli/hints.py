"""Errors that say how to fix them: what the CLI adds to an error from the API or the
database, naming the flag, the environment variable or the command that helps."""

from __future__ import annotations

from conveyor.client import ApiError
from conveyor.store.urls import database_url

NO_KEY = ("pass --api-key or set CONVEYOR_API_KEY (an admin creates one with "
          "`conveyor apikey create --scope submit`)")


def explain(exc: ApiError, url: str) -> str:
    if exc.code == "unreachable":
        where = url or "the --url given"
        return (f"{exc.message}\nis Conveyor running at {where}? start it (`conveyor "
                f"standalone`) or set --url / CONVEYOR_URL")
    if exc.status == 401:
        return f"{exc.message}; {NO_KEY}"
    if exc.status == 403:
        return f"{exc.message}; this key's scope does not allow it (see `conveyor apikey list`)"
    return exc.message


def database_hint(url: str, text: str) -> str | None:
    """How to fix a database that does not exist or has no tables yet; None for the rest."""
    lowered = text.lower()
    if "unknown database" in lowered or ("database" in lowered and "does not exist" in lowered):
        parsed = database_url(url)
        name = parsed.database or ""
        create = (f"createdb {name}" if parsed.get_backend_name() == "postgresql"
                  else f"mysql -e 'CREATE DATABASE {name}'")
        return (f"database {name!r} does not exist at {url}; create it ({create}), "
                "then run `conveyor migrate`")
    if "no such table" in lowered or "doesn't exist" in lowered:
        return f"database {url} has no Conveyor tables yet; run `conveyor migrate --db {url}`"
    return None


def database_error(url: str, exc: BaseException) -> str:
    """The database's complaint, with the fix when there is a known one."""
    return database_hint(url, str(exc)) or f"database {url}: {exc}"

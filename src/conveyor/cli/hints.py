"""Errors that say how to fix them: what the CLI adds to an error from the API or the
database, naming the flag, the environment variable or the command that helps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.dbhelp import database_hint

if TYPE_CHECKING:
    from conveyor.client import ApiError

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
    if exc.status == 429:
        wait = f"retry after {exc.retry_after} s" if exc.retry_after else "retry later"
        return f"{exc.message}; {wait} (quotas: `conveyor tenants list`)"
    return exc.message


def database_error(url: str, exc: BaseException) -> str:
    """The database's complaint, with the fix when there is a known one."""
    return database_hint(url, str(exc)) or f"database {url}: {exc}"

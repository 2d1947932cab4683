"""Turn what a user types for ``--db`` into a SQLAlchemy async URL.

Users write ``conveyor.db``, ``sqlite:///x.db``, ``mysql://...`` or ``postgresql://...``; the
async drivers need ``sqlite+aiosqlite``, ``mysql+asyncmy`` and ``postgresql+asyncpg``.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from conveyor.errors import ConfigError

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
}


def database_url(text: str) -> URL:
    """Accept a plain file path (SQLite) or a database URL; raise ``ConfigError`` otherwise."""
    if "://" not in text:
        return make_url(f"sqlite+aiosqlite:///{text}")
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise ConfigError(f"setting 'database_url': cannot parse {text!r}: {exc}") from exc
    backend = url.get_backend_name()
    driver = _DRIVERS.get(url.drivername) or _DRIVERS.get(backend)
    if driver is None:
        raise ConfigError(
            f"setting 'database_url': unsupported database {url.drivername!r}; "
            "use a SQLite path, mysql://, mariadb:// or postgresql://"
        )
    return url.set(drivername=driver)

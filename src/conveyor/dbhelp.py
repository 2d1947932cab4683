"""How to fix a database that does not exist or has no tables yet: shared by the commands that
touch the database and by a process at start, which gives up at once on these instead of
retrying for a minute (no retry creates a database)."""

from __future__ import annotations


def database_hint(url: str, text: str) -> str | None:
    """How to fix a database that does not exist or has no tables yet; None for the rest."""
    lowered = text.lower()
    if "unknown database" in lowered or ("database" in lowered and "does not exist" in lowered):
        from conveyor.store.urls import database_url  # SQLAlchemy: not for every import

        parsed = database_url(url)
        name = parsed.database or ""
        create = (f"createdb {name}" if parsed.get_backend_name() == "postgresql"
                  else f"mysql -e 'CREATE DATABASE {name}'")
        return (f"database {name!r} does not exist at {url}; create it ({create}), "
                "then run `conveyor migrate`")
    if "no such table" in lowered or "doesn't exist" in lowered:
        return f"database {url} has no Conveyor tables yet; run `conveyor migrate --db {url}`"
    return None

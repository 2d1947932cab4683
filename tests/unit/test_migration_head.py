"""``store.migrate.HEAD`` lets a start skip Alembic when the database is current: it must be
the newest migration Alembic knows, or a new migration would never be applied."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from conveyor.store.migrate import HEAD, MIGRATIONS


def test_head_names_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD]

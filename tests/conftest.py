from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conveyor.bootstrap import Components, build
from conveyor.config import load_settings


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Components]:
    """Standalone components (in-process coordination) on a fresh, migrated SQLite file."""
    built = await build(load_settings(database_url=str(tmp_path / "c.db")), standalone=True)
    await built.store.migrate()
    try:
        yield built
    finally:
        await built.close()

"""Options of the fault-injection suite: ``--long`` runs more tasks and longer faults."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long", action="store_true", default=False,
        help="fault suite: 4x the tasks, the full-length faults of issue 6 (20 s Redis freeze, "
             "15 s database cut)",
    )


@pytest.fixture
def long_mode(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long"))

"""A module the rules tests list in ``worker.python_modules``: the functions it defines may run
from a task config; what it merely imports (``getoutput``) must stay out of reach."""

from __future__ import annotations

from subprocess import getoutput  # noqa: F401 - imported, not defined here: never runnable


def double(x: int) -> dict[str, int]:
    return {"double": 2 * x}

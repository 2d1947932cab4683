"""A package's names imported on first use (PEP 562's module ``__getattr__``).

``conveyor`` and ``conveyor.client`` hand out their public names this way: whatever a package's
``__init__`` imports itself, every process importing anything below it pays for at start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def exports(
    package: str, homes: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: a name is imported from its module in ``homes`` the
    first time it is asked for, then kept in ``namespace`` (the package's globals) so the next
    lookup never comes here."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(home), name)
        namespace[name] = value
        return value

    return __getattr__

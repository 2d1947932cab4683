"""Which fields of each executor's ``executor_config`` are secret (``conveyor.sealing``).

Built-ins: every value of the HTTP executor's ``headers`` and of the gRPC executor's
``metadata``; the python executor has none. A plug-in executor declares its own on its class,
as paths like the built-ins' (``*`` for every key of a map)::

    class VaultExecutor:
        secret_fields = ("token", "extra_headers.*")

The API imports a plug-in's class to read them (only when a config naming it is stored or
shown); a plug-in that cannot be imported there has its configs refused rather than stored
with secrets in the clear.
"""

from __future__ import annotations

import functools
from importlib import import_module

from conveyor.errors import ConfigError
from conveyor.plugins import EXECUTORS, entry_point_names, load_entry_points

# Each built-in declares its own (``SECRET_FIELDS``), read from its module when first asked:
# importing the HTTP and gRPC executors loads httpx, which a worker that runs only python
# tasks never needs.
BUILT_IN: dict[str, str | None] = {
    "python": None,
    "http": "conveyor.executors.http",
    "grpc": "conveyor.executors.grpc",
}


@functools.cache
def secret_fields(executor: str) -> tuple[str, ...]:
    """The secret paths of ``executor``; none for one that is not installed here."""
    if executor in BUILT_IN:
        home = BUILT_IN[executor]
        fields: tuple[str, ...] = () if home is None else import_module(home).SECRET_FIELDS
        return fields
    if executor not in entry_point_names(EXECUTORS):
        return ()
    declared = getattr(_plugins().get(executor), "secret_fields", ())
    if not isinstance(declared, tuple | list) or not all(
        isinstance(f, str) and f for f in declared
    ):
        raise ConfigError(
            f"plug-in executor {executor!r}: secret_fields must be a tuple of paths such as "
            "('token', 'headers.*')"
        )
    return tuple(declared)


@functools.cache
def _plugins() -> dict[str, object]:
    return load_entry_points(EXECUTORS)

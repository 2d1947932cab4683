"""Third-party plug-ins discovered through Python entry points (docs/design.md §6).

A distribution registers an object under one of the groups below in its ``pyproject.toml``::

    [project.entry-points."conveyor.executors"]
    reverse = "conveyor_example_plugin:ReverseExecutor"

``load_entry_points`` only *finds and imports* them: what a group's objects are (an executor
class taking ``Settings``, a load-balancer factory, a listener class) is for ``bootstrap`` to
decide, since it is the one place that builds concrete objects. Nothing is registered as an
import side effect, and nothing is loaded until asked for.

A plug-in that fails to import stops the process with a ``ConfigError`` naming the plug-in,
its distribution and the cause, rather than letting a worker start without a type it was
told to run. Two distributions claiming the same name in a group is refused too: which one
won would otherwise depend on ``sys.path`` order.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from conveyor.errors import ConfigError

EXECUTORS = "conveyor.executors"
LOAD_BALANCERS = "conveyor.load_balancers"
LISTENERS = "conveyor.listeners"
GROUPS = (EXECUTORS, LOAD_BALANCERS, LISTENERS)


def _origin(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"


def _unique(group: str) -> dict[str, EntryPoint]:
    """Entry points of ``group`` by name; the same one seen twice (a distribution found on
    two ``sys.path`` entries) counts once, two different targets for one name are an error."""
    found: dict[str, EntryPoint] = {}
    for entry_point in entry_points(group=group):
        seen = found.get(entry_point.name)
        if seen is not None and seen.value != entry_point.value:
            raise ConfigError(
                f"plug-in name {entry_point.name!r} in group {group!r} is claimed twice: "
                f"{seen.value} ({_origin(seen)}) and {entry_point.value} "
                f"({_origin(entry_point)}); uninstall one of them"
            )
        found.setdefault(entry_point.name, entry_point)
    return found


def entry_point_names(group: str) -> set[str]:
    """The names plug-ins claim in ``group``, without importing them (the API checks a task
    config's executor against them; only workers need the classes)."""
    return set(_unique(group))


def load_entry_points(group: str) -> dict[str, object]:
    """Import every plug-in of ``group`` and return them by entry-point name."""
    loaded: dict[str, object] = {}
    for name, entry_point in sorted(_unique(group).items()):
        try:
            loaded[name] = entry_point.load()
        except Exception as exc:
            raise ConfigError(
                f"plug-in {name!r} of group {group!r} ({entry_point.value}, from "
                f"{_origin(entry_point)}) failed to load: {type(exc).__name__}: {exc}"
            ) from exc
    return loaded

"""Which Python functions a task may run, named by module and name.

A task config may name any ``executor_config.function``; left open, that turned an API key into
a shell on every worker (``subprocess:getoutput`` with a command as payload). So a function
runs only when it is registered with ``@app.task`` on the worker, or is defined in a module
listed in the worker setting ``worker.python_modules`` (empty by default): code the operator
chose to expose, never whatever the interpreter can import. The API applies the same rule when
the config is PUT, and the worker again before it imports anything.

``FunctionRef`` is also how a task process finds the function again: by module and qualified
name, imported afresh in the child, never pickled.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.errors import PermanentError
from conveyor.registrations import Registration, TaskFunction

SETTING = "worker.python_modules"
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True, slots=True)
class FunctionRef:
    """``module:qualname`` of a function."""

    module: str
    name: str

    @classmethod
    def parse(cls, path: object) -> FunctionRef:
        module, _, name = path.partition(":") if isinstance(path, str) else ("", "", "")
        if not _DOTTED.match(module) or not _DOTTED.match(name):
            raise PermanentError(
                f"executor_config.function must be 'module:name', got {path!r}"
            )
        return cls(module, name)

    @classmethod
    def of(cls, func: Callable[..., Any]) -> FunctionRef:
        return cls(getattr(func, "__module__", ""), getattr(func, "__qualname__", ""))

    @property
    def importable(self) -> bool:
        """Whether a fresh interpreter can find it (not a closure, lambda or ``<locals>``)."""
        return bool(_DOTTED.match(self.module) and _DOTTED.match(self.name))

    def __str__(self) -> str:
        return f"{self.module}:{self.name}"


class FunctionPolicy:
    """The rule of the module docstring, for one set of registrations and listed modules."""

    def __init__(self, registrations: Mapping[str, Registration], modules: Iterable[str]) -> None:
        self._registered = {FunctionRef.of(r.func) for r in registrations.values()}
        self._modules = frozenset(modules)

    def check(self, ref: FunctionRef) -> None:
        if ref in self._registered or ref.module in self._modules:
            return
        raise PermanentError(
            f"executor_config.function {str(ref)!r} may not run: it is not registered with "
            f"@app.task on the worker, and its module {ref.module!r} is not listed in the "
            f"setting {SETTING} (CONVEYOR_WORKER__PYTHON_MODULES)"
        )


def load_function(ref: FunctionRef) -> Callable[..., Any]:
    """Import ``ref`` and return the plain function (a ``@app.task`` object is unwrapped).

    The function must be *defined* in its module: ``mytasks:getoutput`` after ``from subprocess
    import getoutput`` in ``mytasks`` is refused, so listing a module exposes its own functions
    and nothing it imported.
    """
    try:
        found: Any = importlib.import_module(ref.module)
        for part in ref.name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise PermanentError(f"cannot import function {str(ref)!r}: {exc}") from exc
    if isinstance(found, TaskFunction):
        found = found.registration.func
    if not callable(found):
        raise PermanentError(f"{str(ref)!r} is not callable")
    if not _same_module(getattr(found, "__module__", None), ref.module):
        raise PermanentError(
            f"{str(ref)!r} is defined in {getattr(found, '__module__', None)!r}, not in "
            f"{ref.module!r}; name it where it is defined"
        )
    return found  # type: ignore[no-any-return]


_MAIN = frozenset({"__main__", "__mp_main__"})  # a spawned child imports ``__main__`` under both


def _same_module(defined_in: object, module: str) -> bool:
    return defined_in == module or (defined_in in _MAIN and module in _MAIN)

"""What a worker can run, so it advertises exactly that and never takes a task it must fail.

A worker runs its registrations (the built-ins and its ``--app``) and the types whose task
config it has the means for: a config naming an executor this worker has (http, grpc, a
plug-in), or the python executor with a function it may run (registered here, or in a module of
``worker.python_modules``). Advertising ``*`` instead made a worker started without ``--app``
take, and permanently fail, every task of the user's own types during a rolling deploy.
``worker.supported_types``, when set, restricts the result further.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from conveyor.errors import PermanentError
from conveyor.executors.functions import FunctionPolicy, FunctionRef
from conveyor.models import TaskConfig
from conveyor.registrations import Registration
from conveyor.store.protocol import TaskConfigs


def runnable_types(
    registrations: Mapping[str, Registration],
    configs: Iterable[TaskConfig],
    executors: Collection[str],
    policy: FunctionPolicy,
    only: Collection[str] = (),
) -> tuple[str, ...]:
    """Pure: the sorted types a worker with these parts can run (``only`` restricts)."""
    types = set(registrations)
    for config in configs:
        if config.executor != "python":
            runs = config.executor in executors
        else:
            runs = _may_run(config, registrations, policy)
        if runs:
            types.add(config.task_type)
    if only:
        types &= set(only)
    return tuple(sorted(types))


def _may_run(
    config: TaskConfig, registrations: Mapping[str, Registration], policy: FunctionPolicy
) -> bool:
    path = config.executor_config.get("function")
    if path is None:
        return config.task_type in registrations
    try:
        policy.check(FunctionRef.parse(path))
    except PermanentError:
        return False
    return True


class Capabilities:
    """``runnable_types`` over the current task configs, read at each heartbeat (the table
    is small and a PUT of a new http type should reach the workers without a restart)."""

    def __init__(
        self,
        registrations: Mapping[str, Registration],
        configs: TaskConfigs,
        executors: Collection[str],
        modules: Iterable[str],
        only: Collection[str],
    ) -> None:
        self._registrations = registrations
        self._configs = configs
        self._executors = executors
        self._policy = FunctionPolicy(registrations, modules)
        self._only = only

    async def types(self) -> tuple[str, ...]:
        return runnable_types(
            self._registrations, await self._configs.list_configs(), self._executors,
            self._policy, self._only,
        )

"""Sharded and broadcast tasks (docs/design.md §10): ``"shards": N`` on a create makes one
workflow (the parent record) whose nodes are N shard tasks and, optionally, a ``then`` fan-in
task after all of them; ``"broadcast": true`` makes one copy per live worker that runs the
type at the moment of the create, each pinned to its worker (``Task.pinned_worker``: the
dispatcher gives it to no other, and the pin sweep cancels it once that worker is gone).

Shard ``i`` is the task asked for with ``shard_index`` (0-based) and ``shard_total`` added to
its payload, so a Python function receives them as keyword arguments and ``current_task()``
shows them in its payload; node names are ``shard-<i>``, zero-padded so they sort in shard
order. ``then`` gets the list of the shards' results, in shard order, under ``results`` (or
the key its ``collect`` names). Everything else is the workflow machinery: one transaction,
release on the last shard's success, cancel on a shard failing for good, the workflow's
state, cancel and retry. Copies are nodes ``copy-<i>`` in the order of their workers' ids,
with the payload as given (a function's signature need not change; ``current_task()`` shows
the worker as ``pinned_worker``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from conveyor.apikeys import ANONYMOUS, Principal
from conveyor.errors import ValidationError
from conveyor.models import Task
from conveyor.service import TaskRequest, TaskService
from conveyor.workflow_service import NodeRequest, WorkflowService
from conveyor.workflows import Workflow

MAX_SHARDS = 10_000
THEN = "then"
COLLECT = "results"


@dataclass(frozen=True, slots=True)
class ShardRequest:
    """``shards`` copies, or with ``broadcast`` one per live worker (``shards`` 0)."""

    task: TaskRequest
    shards: int
    then: TaskRequest | None = None
    collect: str = COLLECT  # the payload key of ``then`` that gets the shards' results
    broadcast: bool = False


def check_shards(shards: object) -> int:
    if isinstance(shards, bool) or not isinstance(shards, int) or not (
            1 <= shards <= MAX_SHARDS):
        raise ValidationError(f"shards must be a whole number within 1..{MAX_SHARDS}, "
                              f"not {shards!r}")
    return shards


def shard_nodes(ask: ShardRequest) -> dict[str, NodeRequest]:
    """The workflow's nodes: refused with the field named when the request cannot shard."""
    total = check_shards(ask.shards)
    _check(ask, "shards")
    width = len(str(total - 1))
    spec = ask.task
    return _with_then(ask, {
        f"shard-{i:0{width}d}": NodeRequest(replace(spec, payload={
            **spec.payload, "shard_index": i, "shard_total": total}))
        for i in range(total)
    })


def copy_nodes(ask: ShardRequest, workers: Sequence[str]) -> dict[str, NodeRequest]:
    """One node per worker, pinned to it."""
    _check(ask, "broadcast")
    if not workers:
        raise ValidationError(f"broadcast: no live worker runs task type {ask.task.task_type!r}"
                              " now, so there is nothing to broadcast to")
    spec = ask.task
    width = len(str(len(workers) - 1))
    return _with_then(ask, {
        f"copy-{i:0{width}d}": NodeRequest(replace(spec, pinned_worker=w))
        for i, w in enumerate(sorted(workers))
    })


def _check(ask: ShardRequest, field: str) -> None:
    spec = ask.task
    if spec.depends_on:
        raise ValidationError(f"{field}: the task takes no depends_on (make the copies a "
                              "workflow's nodes instead)")
    if spec.idempotency_key is not None:
        raise ValidationError(f"{field}: the task takes no idempotency_key")
    if spec.inputs or spec.wait_timeout is not None:
        raise ValidationError(f"{field}: inputs and wait_timeout_seconds need parents, which "
                              "the copies have none of")
    then = ask.then
    if then is not None and (then.depends_on or then.idempotency_key is not None):
        raise ValidationError("then: the fan-in task runs after the copies, and takes no "
                              "depends_on or idempotency_key")


def _with_then(ask: ShardRequest, nodes: dict[str, NodeRequest]) -> dict[str, NodeRequest]:
    """``nodes`` and, when asked, the fan-in after all of them, reading their results."""
    if ask.then is not None:
        then = replace(ask.then, inputs={**ask.then.inputs, ask.collect: "*.result"})
        nodes[THEN] = NodeRequest(then, tuple(nodes))
    return nodes


async def create_sharded(
    tasks: TaskService, ask: ShardRequest, principal: Principal = ANONYMOUS,
    tenant: str | None = None,
) -> tuple[Workflow, list[Task]]:
    """The workflow (named after the task type) with its copies (and ``then``) stored; a
    broadcast reads the live workers that run the type (not draining) first."""
    if ask.broadcast:
        live = await tasks.coordination.registry.live_workers()
        workers = [w.worker_id for w in live
                   if w.supports(ask.task.task_type) and not w.draining]
        nodes = copy_nodes(ask, workers)
        name = f"{ask.task.task_type} broadcast"
    else:
        nodes = shard_nodes(ask)
        name = f"{ask.task.task_type} x{ask.shards}"
    return await WorkflowService(tasks).create(name, nodes, principal, tenant,
                                               max_nodes=MAX_SHARDS + 1)

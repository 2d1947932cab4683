"""Sharded tasks (docs/design.md §10): ``"shards": N`` on a create makes one workflow (the
parent record) whose nodes are N shard tasks and, optionally, a ``then`` fan-in task after
all of them.

Shard ``i`` is the task asked for with ``shard_index`` (0-based) and ``shard_total`` added to
its payload, so a Python function receives them as keyword arguments and ``current_task()``
shows them in its payload; node names are ``shard-<i>``, zero-padded so they sort in shard
order. ``then`` gets the list of the shards' results, in shard order, under ``results`` (or
the key its ``collect`` names). Everything else is the workflow machinery: one transaction,
release on the last shard's success, cancel on a shard failing for good, the workflow's
state, cancel and retry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from conveyor.apikeys import ANONYMOUS, Principal
from conveyor.errors import ValidationError
from conveyor.models import Task
from conveyor.service import TaskRequest
from conveyor.workflow_service import NodeRequest, WorkflowService
from conveyor.workflows import Workflow

MAX_SHARDS = 10_000
THEN = "then"
COLLECT = "results"


@dataclass(frozen=True, slots=True)
class ShardRequest:
    task: TaskRequest
    shards: int
    then: TaskRequest | None = None
    collect: str = COLLECT  # the payload key of ``then`` that gets the shards' results


def check_shards(shards: object) -> int:
    if isinstance(shards, bool) or not isinstance(shards, int) or not (
            1 <= shards <= MAX_SHARDS):
        raise ValidationError(f"shards must be a whole number within 1..{MAX_SHARDS}, "
                              f"not {shards!r}")
    return shards


def shard_nodes(ask: ShardRequest) -> dict[str, NodeRequest]:
    """The workflow's nodes: refused with the field named when the request cannot shard."""
    total = check_shards(ask.shards)
    spec = ask.task
    if spec.depends_on:
        raise ValidationError("shards: a sharded task takes no depends_on (make the shards "
                              "a workflow's nodes instead)")
    if spec.idempotency_key is not None:
        raise ValidationError("shards: a sharded task takes no idempotency_key")
    if spec.inputs or spec.wait_timeout is not None:
        raise ValidationError("shards: inputs and wait_timeout_seconds need parents, which a "
                              "shard has none of")
    width = len(str(total - 1))
    names = [f"shard-{i:0{width}d}" for i in range(total)]
    nodes = {
        name: NodeRequest(replace(spec, payload={
            **spec.payload, "shard_index": i, "shard_total": total}))
        for i, name in enumerate(names)
    }
    if ask.then is not None:
        if ask.then.depends_on or ask.then.idempotency_key is not None:
            raise ValidationError("then: the fan-in task runs after the shards, and takes no "
                                  "depends_on or idempotency_key")
        then = replace(ask.then, inputs={**ask.then.inputs, ask.collect: "*.result"})
        nodes[THEN] = NodeRequest(then, tuple(names))
    return nodes


async def create_sharded(
    workflows: WorkflowService, ask: ShardRequest, principal: Principal = ANONYMOUS,
    tenant: str | None = None,
) -> tuple[Workflow, list[Task]]:
    """The workflow named after the task type, with its shards (and ``then``) stored."""
    nodes = shard_nodes(ask)
    name = f"{ask.task.task_type} x{ask.shards}"
    return await workflows.create(name, nodes, principal, tenant, max_nodes=MAX_SHARDS + 1)

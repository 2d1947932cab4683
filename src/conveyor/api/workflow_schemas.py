"""Request and response bodies of the workflow routes (docs/design.md §10)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from conveyor.api.schemas import TaskCreate, iso
from conveyor.errors import ValidationError
from conveyor.shards import MAX_SHARDS, ShardRequest
from conveyor.workflow_service import NodeRequest, WorkflowView
from conveyor.workflows import MAX_NODES, Workflow


class NodeIn(TaskCreate):
    """A task of the workflow; ``after`` names the nodes it waits for. Inputs name parents by
    node (``"fetch.result.path"``, or ``"*.result"`` for the list of every parent's)."""

    model_config = ConfigDict(extra="forbid")

    after: list[str] = Field(default_factory=list, max_length=MAX_NODES)

    def to_node(self) -> NodeRequest:
        return NodeRequest(self.to_spec(), tuple(self.after))


class TaskCreateOne(TaskCreate):
    """``POST /api/v1/tasks``: one task, or with ``shards`` a workflow of shard tasks."""

    model_config = ConfigDict(extra="forbid")

    shards: StrictInt | None = Field(
        None, ge=1, le=MAX_SHARDS,
        description="this many shard tasks, each with shard_index and shard_total in its "
                    "payload, created as one workflow")
    then: TaskCreate | None = Field(
        None, description="with shards: a task after every shard, its payload's 'results' "
                          "the list of their results in shard order")
    broadcast: bool = Field(
        False, description="one copy on every live worker that runs the type now, each "
                           "pinned to its worker, created as one workflow")

    def sharding(self) -> ShardRequest | None:
        """The shard or broadcast request, or None for a plain create; bad combinations name
        the field."""
        if self.broadcast and self.shards is not None:
            raise ValidationError("give shards or broadcast, not both")
        if self.shards is None and not self.broadcast:
            if self.then is not None:
                raise ValidationError("then: a fan-in task needs shards or broadcast")
            return None
        then = None if self.then is None else self.then.to_spec()
        return ShardRequest(self.to_spec(), self.shards or 0, then, broadcast=self.broadcast)


class WorkflowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255, examples=["nightly-etl"])
    tasks: dict[str, NodeIn] = Field(
        min_length=1, max_length=MAX_NODES,
        examples=[{"fetch": {"task_type": "echo"},
                   "resize": {"task_type": "echo", "after": ["fetch"],
                              "inputs": {"image": "fetch.result.path"}}}],
    )


class NodeOut(BaseModel):
    task_id: str
    status: str | None = Field(None, description="None: the task was purged")
    after: list[str] = Field(default_factory=list, description="the nodes it runs after")


class WorkflowOut(BaseModel):
    workflow_id: str
    name: str
    tenant: str
    state: str = Field(description="RUNNING, SUCCESS, FAILED or CANCELLED")
    created_at: str | None
    nodes: dict[str, NodeOut]

    @classmethod
    def of(cls, view: WorkflowView) -> WorkflowOut:
        f = view.flow
        return cls(workflow_id=f.id, name=f.name, tenant=f.tenant, state=str(view.state),
                   created_at=iso(f.created_at),
                   nodes={n: NodeOut(task_id=t, status=None if s is None else str(s),
                                     after=view.after.get(n, []))
                          for n, (t, s) in view.nodes.items()})


class WorkflowCreated(BaseModel):
    workflow_id: str
    nodes: dict[str, str] = Field(description="node name -> task id")


class WorkflowSummary(BaseModel):
    workflow_id: str
    name: str
    tenant: str
    created_at: str | None

    @classmethod
    def of(cls, f: Workflow) -> WorkflowSummary:
        return cls(workflow_id=f.id, name=f.name, tenant=f.tenant, created_at=iso(f.created_at))


class WorkflowList(BaseModel):
    workflows: list[WorkflowSummary]
    next_cursor: str | None = None

"""``WorkflowService``: what the API does with workflows (docs/design.md §10).

A create checks the whole graph and builds every node's task (the type's defaults and checks,
as for any task) before anything is written, then writes all of them in one transaction, so a
refused workflow has stored nothing. Nodes name their parents by node name (``after``), and
their inputs by node name too (``"fetch.result.path"``); both become task ids here.

Tenancy as for tasks: another tenant's workflow is ``NotFound`` with the text of a missing
id. Cancel and retry are audited (``workflow.cancel``, ``workflow.retry``) in the transaction
of their moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from conveyor.apikeys import ANONYMOUS, Principal
from conveyor.audit import Action, Actor, AuditEntry
from conveyor.catalog import TypeSpec
from conveyor.coordination.protocol import AttemptRef
from conveyor.errors import Conflict, Forbidden, NotFound, ValidationError
from conveyor.ids import is_id, new_ids
from conveyor.models import Task, TaskStatus
from conveyor.placement import place, queue_item
from conveyor.service import Draft, TaskRequest, TaskService
from conveyor.values import check_text
from conveyor.workflows import MAX_NODES, Workflow, WorkflowState, order, state_of

MAX_NAME_CHARS = 255


@dataclass(frozen=True, slots=True)
class NodeRequest:
    """One node: its task, and the nodes it runs after."""

    task: TaskRequest
    after: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkflowView:
    flow: Workflow
    state: WorkflowState
    nodes: dict[str, tuple[str, TaskStatus | None]] = field(default_factory=dict)
    after: dict[str, list[str]] = field(default_factory=dict)  # node -> its parent nodes


class WorkflowService:
    def __init__(self, tasks: TaskService) -> None:
        self._tasks = tasks
        self._store = tasks.store

    async def create(
        self, name: str, nodes: Mapping[str, NodeRequest], principal: Principal = ANONYMOUS,
        tenant: str | None = None, *, max_nodes: int = MAX_NODES,
    ) -> tuple[Workflow, list[Task]]:
        """``max_nodes``: a sharded create counts its fan-in on top of its 10,000 shards."""
        home = tenant or principal.tenant
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS:
            raise ValidationError(f"name must be a string of 1..{MAX_NAME_CHARS} characters")
        check_text(name, "name", column=True)
        ordered = order({n: r.after for n, r in nodes.items()}, max_nodes)
        now = self._tasks.clock()
        flow_id, *task_ids = new_ids(len(ordered) + 1, now)
        ids = dict(zip(ordered, task_ids, strict=True))  # parents first: their ids are lower
        labelled = [(f"tasks.{n}: ", nodes[n].task) for n in ordered]
        types = await self._tasks.type_specs(labelled, home)
        tasks = [self._node(n, nodes[n], ids, now, types[nodes[n].task.task_type], principal,
                            home) for n in ordered]
        await self._tasks.quotas.admit(home, len(tasks))
        flow = Workflow(flow_id, home, name, now, principal.key_id, ids)
        stored = await self._store.workflows.create(flow, tasks, now)
        ready = [t for t in stored if t.status == TaskStatus.PENDING]
        await place(self._tasks.coordination.queues, ready, self._tasks.clock())
        return flow, stored

    def _node(
        self, node: str, request: NodeRequest, ids: dict[str, str], now: float,
        type_spec: TypeSpec, principal: Principal, tenant: str,
    ) -> Task:
        where, spec = f"tasks.{node}: ", request.task
        if spec.depends_on or spec.idempotency_key is not None:
            raise ValidationError(f"{where}a node names its parents with after, and takes no "
                                  "depends_on or idempotency_key")
        if spec.inputs and not request.after:
            raise ValidationError(f"{where}inputs need after: they read parents' results")
        parents = tuple(ids[p] for p in dict.fromkeys(request.after))
        draft = Draft(ids[node], now, where, parents, {p: ids[p] for p in request.after},
                      parents_field="after")
        return self._tasks.make(spec, type_spec, draft, principal, tenant)

    async def get(self, workflow_id: str, tenant: str | None) -> WorkflowView:
        flow = await self._store.workflows.get(workflow_id, tenant) if is_id(workflow_id) else None
        if flow is None:
            raise NotFound(f"no workflow with id {workflow_id!r}")
        states = await self._store.workflows.node_states(flow.id)
        nodes = {n: (t, states.get(n)) for n, t in sorted(flow.nodes.items())}
        after = await self._store.workflows.edges(flow)
        return WorkflowView(flow, state_of(list(states.values())), nodes, after)

    async def list_workflows(
        self, tenant: str | None, name: str | None, cursor: str | None, limit: int
    ) -> list[Workflow]:
        if cursor is not None and not is_id(cursor):
            raise ValidationError("cursor: not a cursor of this API (pass next_cursor back)")
        return await self._store.workflows.list_workflows(tenant, name, cursor, limit)

    async def _owned(self, workflow_id: str, principal: Principal) -> WorkflowView:
        view = await self.get(workflow_id, principal.sees)
        if not principal.owns(view.flow.owner):
            raise Forbidden(f"workflow {workflow_id} was created by another API key")
        return view

    async def cancel(
        self, workflow_id: str, principal: Principal = ANONYMOUS, *, actor: Actor | None = None
    ) -> WorkflowView:
        """Waiting and pending nodes are cancelled at once, running ones signalled."""
        view = await self._owned(workflow_id, principal)
        if view.state != WorkflowState.RUNNING:
            raise Conflict(f"workflow {workflow_id} is {view.state} and cannot be cancelled")
        audit = AuditEntry(actor or Actor.of(principal), Action.WORKFLOW_CANCEL, workflow_id)
        done = await self._store.workflows.cancel(view.flow, self._tasks.clock(), audit)
        coordination = self._tasks.coordination
        await coordination.queues.remove([queue_item(t) for t in done.cancelled])
        for t in done.running:
            await coordination.cancels.request(AttemptRef(t.id, t.attempt), t.timeout + 60.0)
        return await self.get(workflow_id, principal.sees)

    async def retry(
        self, workflow_id: str, principal: Principal = ANONYMOUS, *, actor: Actor | None = None
    ) -> WorkflowView:
        """Reopen failed nodes and their cancelled descendants."""
        view = await self._owned(workflow_id, principal)
        if view.state not in (WorkflowState.FAILED, WorkflowState.CANCELLED):
            raise Conflict(f"workflow {workflow_id} is {view.state}; only FAILED or CANCELLED "
                           "workflows can be retried")
        audit = AuditEntry(actor or Actor.of(principal), Action.WORKFLOW_RETRY, workflow_id)
        now = self._tasks.clock()
        pending = await self._store.workflows.retry(view.flow, now, audit)
        await place(self._tasks.coordination.queues, pending, now)
        return await self.get(workflow_id, principal.sees)

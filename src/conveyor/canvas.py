"""Pure: workflows composed in Python, as ``chain``, ``group`` and ``chord`` of task steps,
built into the body of ``POST /api/v1/workflows`` (docs/design.md §10).

    from conveyor.canvas import chain, chord, group, step

    flow = chain(step("fetch", url="..."),
                 group(step("resize", size=64), step("resize", size=512)),
                 step("report"))
    client.workflows.submit("thumbnails", flow.nodes())
    handle = flow.submit(client)          # or: await flow.asubmit(async_client)
    handle.result(timeout=60)             # what "report" returned

A chain runs its parts one after another (each part after every last node of the one before);
a group runs its parts side by side; a chord is a group followed by one step that gets the
list of the group's results (``collect`` names the payload key; None: no results passed).
Node names are the task type and a running number, unique in the workflow.

``submit`` / ``asubmit`` send the body and return a handle (``client.flows``) whose
``result()`` waits for the workflow and gives what its last node returned; for a part that
ends in a group, the list of the group's results in the group's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.client.flows import AsyncWorkflowHandle, WorkflowHandle
from conveyor.errors import ValidationError

if TYPE_CHECKING:
    from conveyor.client.aio import AsyncClient
    from conveyor.client.sync import Client

Nodes = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Part:
    """Something that adds nodes after ``after`` and tells which of them end it."""

    def add(self, nodes: Nodes, after: Sequence[str]) -> list[str]:
        raise NotImplementedError

    @property
    def many(self) -> bool:
        """Whether the part ends in a group, so its result is a list."""
        return False

    def built(self) -> tuple[Nodes, list[str]]:
        """The ``tasks`` of a workflow body and the names of the nodes that end it."""
        nodes: Nodes = {}
        ends = self.add(nodes, [])
        return nodes, ends

    def nodes(self) -> Nodes:
        """The ``tasks`` of a workflow body: node name → task body with ``after``."""
        return self.built()[0]

    def submit(self, client: Client, name: str | None = None) -> WorkflowHandle:
        """Create the workflow (named ``name``, else after its first node's type)."""
        nodes, ends = self.built()
        made = client.workflows.submit(name or _name(nodes), nodes)
        return WorkflowHandle(client, made["workflow_id"], made["nodes"], ends, self.many)

    async def asubmit(self, client: AsyncClient, name: str | None = None) -> AsyncWorkflowHandle:
        nodes, ends = self.built()
        made = await client.workflows.submit(name or _name(nodes), nodes)
        return AsyncWorkflowHandle(client, made["workflow_id"], made["nodes"], ends, self.many)


def _name(nodes: Nodes) -> str:
    return str(next(iter(nodes.values()))["task_type"])


@dataclass(frozen=True)
class Step(Part):
    task_type: str
    payload: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # priority, timeout_seconds, ...
    inputs: dict[str, str] = field(default_factory=dict)

    def add(self, nodes: Nodes, after: Sequence[str]) -> list[str]:
        name = f"{self.task_type}-{len(nodes)}"
        body: dict[str, Any] = {"task_type": self.task_type, "payload": dict(self.payload),
                                **self.options}
        if after:
            body["after"] = list(after)
        if self.inputs:
            body["inputs"] = dict(self.inputs)
        nodes[name] = body
        return [name]


@dataclass(frozen=True)
class Chain(Part):
    parts: tuple[Part, ...]

    @property
    def many(self) -> bool:
        return self.parts[-1].many

    def add(self, nodes: Nodes, after: Sequence[str]) -> list[str]:
        ends = list(after)
        for part in self.parts:
            ends = part.add(nodes, ends)
        return ends


@dataclass(frozen=True)
class Group(Part):
    parts: tuple[Part, ...]

    @property
    def many(self) -> bool:
        return True

    def add(self, nodes: Nodes, after: Sequence[str]) -> list[str]:
        return [end for part in self.parts for end in part.add(nodes, after)]


def step(task_type: str, /, **payload: Any) -> Step:
    """A task with ``payload``; ``with_options(step(...), priority="high")`` for the rest."""
    return Step(task_type, payload)


def with_options(s: Step, **options: Any) -> Step:
    return Step(s.task_type, s.payload, {**s.options, **options}, s.inputs)


def chain(*parts: Part) -> Chain:
    if not parts:
        raise ValidationError("chain: give at least one part")
    return Chain(parts)


def group(*parts: Part) -> Group:
    if not parts:
        raise ValidationError("group: give at least one part")
    return Group(parts)


def chord(header: Group, callback: Step, collect: str | None = "results") -> Chain:
    """``callback`` after every part of ``header``, its ``collect`` key set to the list of
    their results (in the header's order)."""
    if collect is not None:
        callback = Step(callback.task_type, callback.payload, callback.options,
                        {**callback.inputs, collect: "*.result"})
    return Chain((header, callback))

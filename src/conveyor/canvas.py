"""Pure: workflows composed in Python, as ``chain``, ``group`` and ``chord`` of task steps,
built into the body of ``POST /api/v1/workflows`` (docs/design.md §10).

    from conveyor.canvas import chain, chord, group, step

    flow = chain(step("fetch", url="..."),
                 group(step("resize", size=64), step("resize", size=512)),
                 step("report"))
    client.workflows.submit("thumbnails", flow.nodes())

A chain runs its parts one after another (each part after every last node of the one before);
a group runs its parts side by side; a chord is a group followed by one step that gets the
list of the group's results (``collect`` names the payload key; None: no results passed).
Node names are the task type and a running number, unique in the workflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import ValidationError

Nodes = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Part:
    """Something that adds nodes after ``after`` and tells which of them end it."""

    def add(self, nodes: Nodes, after: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def nodes(self) -> Nodes:
        """The ``tasks`` of a workflow body: node name → task body with ``after``."""
        built: Nodes = {}
        self.add(built, [])
        return built


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

    def add(self, nodes: Nodes, after: Sequence[str]) -> list[str]:
        ends = list(after)
        for part in self.parts:
            ends = part.add(nodes, ends)
        return ends


@dataclass(frozen=True)
class Group(Part):
    parts: tuple[Part, ...]

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
